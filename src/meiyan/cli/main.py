"""The ``meiyan`` command line: the same core as the Python API, one command per job.

Commands are imported when they are run (:class:`LazyGroup`), so that ``meiyan beautify``
loads what retouching needs and nothing of makeup, training or the server.
"""

from __future__ import annotations

import importlib

import click

from meiyan.memory import keep_freed_memory

COMMANDS = {
    "beautify": ("meiyan.cli.retouch_cmds", "beautify_cmd",
                 "Retouch the skin of portraits: the main job."),
    "smooth": ("meiyan.cli.retouch_cmds", "smooth_cmd", "Smooth the skin of images."),
    "mask": ("meiyan.cli.face_cmds", "mask", "Write the skin mask of each photo as a PNG."),
    "landmarks": ("meiyan.cli.face_cmds", "landmarks", "Write the faces of each photo as JSON."),
    "makeup": ("meiyan.cli.makeup_cmds", "makeup_cmd",
               "Make up faces after a reference photo or a named look."),
    "models": ("meiyan.cli.models_cmds", "models",
               "List, verify, locate and fetch the model files."),
    "edit": ("meiyan.cli.edit_cmds", "edit_cmd",
             "Erase a region and fill it after sketch lines and colours."),
    "convert": ("meiyan.cli.convert_cmds", "convert",
                "Convert official weights into ONNX files (`train` extra)."),
    "train": ("meiyan.cli.train_cmds", "train", "Train a network (`train` extra)."),
    "export": ("meiyan.cli.train_cmds", "export",
               "Export a trained network to ONNX (`train` extra)."),
    "serve": ("meiyan.serve.cli", "serve", "Serve the REST API and the browser UI."),
}  # fmt: skip
"""Command name -> (module, attribute) of its click command, and its line in ``meiyan --help``
(so that listing the commands imports none of them)."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their lines from :data:`COMMANDS`, none of them imported."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meiyan", prog_name="meiyan")
def main() -> None:
    """meiyan (美颜): AI portrait beautification."""
    keep_freed_memory()
