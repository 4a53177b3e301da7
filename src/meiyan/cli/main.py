"""The ``meiyan`` command line: the same core as the Python API, one command per job.

Commands are imported when they are run (:class:`LazyGroup`), so that ``meiyan beautify``
loads what retouching needs and nothing of makeup, training or the server.
"""

from __future__ import annotations

import importlib

import click

from meiyan.memory import keep_freed_memory

COMMANDS = {
    "beautify": ("meiyan.cli.retouch_cmds", "beautify_cmd"),
    "smooth": ("meiyan.cli.retouch_cmds", "smooth_cmd"),
    "mask": ("meiyan.cli.face_cmds", "mask"),
    "landmarks": ("meiyan.cli.face_cmds", "landmarks"),
    "makeup": ("meiyan.cli.makeup_cmds", "makeup_cmd"),
    "models": ("meiyan.cli.models_cmds", "models"),
    "edit": ("meiyan.cli.edit_cmds", "edit_cmd"),
    "convert": ("meiyan.cli.convert_cmds", "convert"),
    "train": ("meiyan.cli.train_cmds", "train"),
    "export": ("meiyan.cli.train_cmds", "export"),
    "serve": ("meiyan.serve.cli", "serve"),
}
"""Command name -> (module, attribute) of its click command."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meiyan", prog_name="meiyan")
def main() -> None:
    """meiyan (美颜): AI portrait beautification."""
    keep_freed_memory()
