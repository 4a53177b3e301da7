"""Options shared by every command that reads images and writes results.

``--format``, ``--quality`` and ``--jobs`` are not passed to the command function: they are kept
in the click context, where :class:`meiyan.cli.batch.Output` and
:func:`meiyan.cli.batch.run_batch` read them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from meiyan.cli.batch import default_jobs
from meiyan.io.image import DEFAULT_MAX_PIXELS

FORMATS = ("jpg", "png", "webp", "tif", "bmp")


def _keep(name: str, convert: Callable[[object], object] = lambda v: v) -> Callable:
    """A callback that keeps an option's value in ``ctx.meta["meiyan.<name>"]``."""

    def callback(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if value is not None:
            ctx.meta[f"meiyan.{name}"] = convert(value)

    return callback


def batch_options(fn: Callable) -> Callable:
    """Inputs (files or folders), ``-o`` output folder, ``--overwrite``, ``--max-pixels``,
    ``--format``, ``--quality`` and ``--jobs``."""
    fn = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=default_jobs(),
        show_default="the CPU count",
        expose_value=False,
        callback=_keep("jobs"),
        help="Worker processes for a batch, one thread each; 1 works in this process.",
    )(fn)
    fn = click.option(
        "--quality",
        type=click.IntRange(1, 100),
        expose_value=False,
        callback=_keep("quality"),
        help="JPEG and WebP quality of the results [95].",
    )(fn)
    fn = click.option(
        "--format",
        type=click.Choice(FORMATS, case_sensitive=False),
        expose_value=False,
        callback=_keep("format", lambda v: f".{str(v).lower()}"),
        help="Format of the result images [the input's; makeup and masks: png].",
    )(fn)
    fn = click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse images with more pixels than this (decompression-bomb guard).",
    )(fn)
    fn = click.option("--overwrite", is_flag=True, help="Replace existing output files.")(fn)
    fn = click.option(
        "-o",
        "--output",
        "out_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Output folder; each result is named after its input.",
    )(fn)
    return click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))(fn)
