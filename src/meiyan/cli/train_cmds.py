"""``meiyan train`` and ``meiyan export``: training and ONNX export of meiyan's networks.

torch is imported inside the commands only, so ``meiyan --help`` and every inference command
work without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from meiyan.errors import MeiyanError


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise click.ClickException("training needs PyTorch: pip install 'meiyan[train]'") from e


def _labels(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError as e:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from e


@click.group()
def train() -> None:
    """Train a network (needs the `train` extra)."""


@train.command("skin-unet")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="images/ with masks/ or labels/ (FASSEG), or an LFW Part Labels folder.",
)
@click.option(
    "--out",
    default="runs/skin-unet",
    show_default=True,
    type=click.Path(),
    help="Folder for last.pt, best.pt and history.json.",
)
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--batch", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--val-split",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="Fraction of the data held out for validation.",
)
@click.option(
    "--width",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Channel multiplier (1.0: the seed's 34.6M parameters).",
)
@click.option(
    "--size",
    default=256,
    show_default=True,
    type=click.IntRange(min=32),
    help="Input side in pixels, a multiple of 32.",
)
@click.option(
    "--loss", default="bce", show_default=True, type=click.Choice(["bce", "dice", "bce+dice"])
)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Adam learning rate.")
@click.option(
    "--schedule",
    default="constant",
    show_default=True,
    type=click.Choice(["constant", "cosine"]),
    help="Learning-rate schedule.",
)
@click.option(
    "--skin-labels",
    default=None,
    help="Label maps: comma-separated skin labels (FASSEG default: 1,4).",
)
@click.option("--no-augment", is_flag=True, help="Train on the framed photos as they are.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="CPU threads for torch (default: torch's choice).",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
def train_skin_unet(**opts: object) -> None:
    """Train the U-Net skin segmenter (seed recipe: Adam, binary cross-entropy)."""
    _need_torch()
    from meiyan.train.train_skin_unet import TrainConfig
    from meiyan.train.train_skin_unet import train as run

    cfg = TrainConfig(
        data=str(opts["data"]),
        out=str(opts["out"]),
        epochs=opts["epochs"],
        batch=opts["batch"],
        val_split=opts["val_split"],
        width=opts["width"],
        size=opts["size"],
        loss=opts["loss"],
        lr=opts["lr"],
        schedule=opts["schedule"],
        seed=opts["seed"],
        skin_labels=_labels(opts["skin_labels"]),
        augment=not opts["no_augment"],
        threads=opts["threads"],
        resume=opts["resume"],
    )
    try:
        summary = run(cfg)
    except (MeiyanError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"best IoU {summary['best_iou']:.4f}; checkpoints in {cfg.out}")


@click.group()
def export() -> None:
    """Export a trained network to ONNX (needs the `train` extra)."""


@export.command("skin-unet")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The .onnx file to write.",
)
def export_skin_unet(checkpoint: str, output: str) -> None:
    """Export a skin U-Net checkpoint to ONNX and check it against torch."""
    _need_torch()
    from meiyan.train.export import export_skin_unet as run

    try:
        diff = run(Path(checkpoint), Path(output))
    except MeiyanError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {output} (max |onnx - torch| = {diff:.2e})")
