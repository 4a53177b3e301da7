"""``--settings FILE.json`` for the command line: a job's settings from the schema that REST and
the browser UI use (:mod:`meiyan.serve.schema`); options given on the command line win."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


def _defaults(job: str) -> Callable[[click.Context, click.Parameter, Path | None], None]:
    def callback(ctx: click.Context, param: click.Parameter, path: Path | None) -> None:
        if path is None:
            return
        try:
            from meiyan.serve.schema import load
        except ImportError as e:
            raise click.BadParameter(
                f"needs pydantic (pip install 'meiyan[web]'): {e}", ctx, param
            ) from None
        try:
            values = load(job, path).cli_defaults()
        except ValueError as e:
            raise click.BadParameter(str(e), ctx, param) from None
        defaults = dict(ctx.default_map or {})
        for p in ctx.command.params:
            for opt in p.opts if isinstance(p, click.Option) else ():
                name = opt.removeprefix("--").replace("-", "_")
                if opt.startswith("--") and name in values:
                    defaults[p.name] = values[name]
        ctx.default_map = defaults

    return callback


def settings_option(job: str) -> Callable[[Callable], Callable]:
    """``--settings FILE.json``: defaults for ``job``'s options, checked by its schema."""
    return click.option(
        "--settings",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        is_eager=True,
        expose_value=False,
        callback=_defaults(job),
        help="JSON object of settings (the REST and UI schema); options given here win.",
    )
