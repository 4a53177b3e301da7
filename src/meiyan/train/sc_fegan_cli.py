"""``meiyan train sc-fegan``: SC-FEGAN training (Jo and Park, ICCV 2019) on the trainer.

The lead's :mod:`meiyan.cli.train_cmds` adds :func:`train_sc_fegan` to its ``train`` group;
``python -m meiyan.train.sc_fegan_cli`` runs the same command on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meiyan.cli.train_cmds import _fit, _need_torch, trainer_options

NAME = "sc-fegan"


@click.command(NAME)
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Face folder (train/ and validation/ inside, or split by --val-split), or a "
              "prepared .npz.")
@trainer_options(NAME, epochs=20, batch=4)
@click.option("--size", default=256, show_default=True, type=click.Choice(["256", "512"]),
              help="Working side in pixels.")
@click.option("--crop", default=None, type=click.IntRange(min=128),
              help="Train on squares of this side (a multiple of 128) around the holes; "
              "validation sees whole faces.")
@click.option("--width", default=0.25, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Channel multiplier (1.0: the published 92.9M parameters).")
@click.option("--lr", default=2e-4, show_default=True, type=float, help="Adam learning rate.")
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Epochs of L1 + TV alone before the perceptual, style and adversarial terms.")
@click.option("--perceptual-size", default=None, type=click.IntRange(min=32),
              help="Side the VGG-16 loss network sees (default: --size).")
@click.option("--vgg", default=None, type=click.Path(exists=True, dir_okay=False),
              help="VGG-16 weights (.h5 or .pth) for the loss network [default: HED's trunk].")
@click.option("--hed-size", default=None, type=click.IntRange(min=32),
              help="Side HED runs at during preparation (default: --size).")
@click.option("--no-hed", is_flag=True, help="Canny sketches instead of HED.")
@click.option("--val-split", default=0.1, show_default=True,
              type=click.FloatRange(0, 1, max_open=True),
              help="Held out when the data has no validation/ folder.")
@click.option("--val-limit", default=48, show_default=True, type=click.IntRange(min=1),
              help="Validation photos used (a grid of them is written each epoch).")
@click.option("--init", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Start the generator from this sc-fegan checkpoint (e.g. a second phase at "
              "a lower --lr).")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Train on the first N photos only.")
def train_sc_fegan(**opts: Any) -> None:
    """Train the SC-FEGAN generator (sketch- and colour-guided face inpainting)."""
    _need_torch()
    from meiyan.train.tasks.sc_fegan import SCFEGANConfig, SCFEGANTask
    from meiyan.train.trainer import runs_dir

    out = Path(opts["out"]) if opts["out"] else runs_dir() / NAME
    opts["out"] = str(out)
    try:
        task = SCFEGANTask(SCFEGANConfig(
            data=str(opts["data"]), size=int(opts["size"]), crop=opts["crop"],
            width=opts["width"], lr=opts["lr"],
            warmup_epochs=opts["warmup_epochs"], perceptual_size=opts["perceptual_size"],
            vgg=opts["vgg"], hed=not opts["no_hed"], hed_size=opts["hed_size"],
            val_split=opts["val_split"],
            val_limit=opts["val_limit"], limit=opts["limit"], samples=str(out / "samples"),
            init=opts["init"],
        ))
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    summary = _fit(task, opts)
    best = summary["best"]
    click.echo(f"best {best['metric']} {best['value']:.2f} dB (epoch {best['epoch']}); "
               f"checkpoints in {summary['out']}")


if __name__ == "__main__":
    train_sc_fegan()
