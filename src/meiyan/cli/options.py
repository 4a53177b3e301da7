"""Options shared by every command that reads images and writes results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from meiyan.io.image import DEFAULT_MAX_PIXELS


def batch_options(fn: Callable) -> Callable:
    """Inputs (files or folders), ``-o`` output folder, ``--overwrite`` and ``--max-pixels``."""
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
