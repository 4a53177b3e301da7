"""Running one command over many inputs: progress bar, per-file errors, exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click
from tqdm import tqdm

from meiyan.errors import MeiyanError
from meiyan.io.paths import collect_inputs


def run_batch(inputs: Iterable[str], job: Callable[[Path], None], *, desc: str) -> int:
    """Call ``job`` on every input file; report each failure on one line and go on.

    Returns the exit code: 0 when every file succeeded, 1 when any failed. A progress bar is
    shown (on stderr) when there is more than one file.
    """
    try:
        files = collect_inputs(inputs)
    except MeiyanError as e:
        click.echo(f"meiyan: error: {e}", err=True)
        return 2
    if not files:
        click.echo("meiyan: error: no input images found", err=True)
        return 2
    failed = 0
    for path in tqdm(files, desc=desc, unit="img", disable=len(files) < 2):
        try:
            job(path)
        except MeiyanError as e:
            tqdm.write(f"meiyan: error: {e}", file=sys.stderr)
            failed += 1
    if failed:
        click.echo(f"meiyan: {failed} of {len(files)} file(s) failed", err=True)
    return 1 if failed else 0
