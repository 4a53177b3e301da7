"""``meiyan convert psgan``: an official PSGAN ``G.pth`` to the ONNX the ``psgan`` engine runs.

Registered on ``meiyan convert`` by :mod:`meiyan.cli.convert_cmds`; torch
is imported inside the command only, so ``meiyan --help`` works without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from meiyan.errors import MeiyanError
from meiyan.makeup.psgan.compress import PRECISIONS

precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="How the convolution weights are stored: float16 halves the file (about 25 MB), "
    "int8 quarters it (about 13 MB); all run in float32.",
)


@click.command("psgan")
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The .onnx file to write.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@precision_option
def convert_psgan(weights: str, output: str, overwrite: bool, precision: str) -> None:
    """Convert PSGAN's generator state dict (G.pth, official key layout) to ONNX.

    The ONNX file takes RGB in [0, 1], PSGAN's region masks, 68 landmarks and a shade per
    region, and is checked against torch on random inputs.
    """
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise click.ClickException("converting needs PyTorch: pip install 'meiyan[train]'") from e
    from meiyan.makeup.psgan.convert import export_psgan

    out = Path(output)
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} exists; pass --overwrite to replace it")
    try:
        diff = export_psgan(Path(weights), out, source=Path(weights).name, precision=precision)
    except MeiyanError as e:
        raise click.ClickException(str(e)) from e
    size = out.stat().st_size / 1e6
    click.echo(f"wrote {out} ({size:.1f} MB, max |onnx - torch| = {diff:.2e})")
