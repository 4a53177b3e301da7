"""``meiyan train abpn``: ABPN on synthetic defects (:mod:`meiyan.train.tasks.abpn`).

The lead's :mod:`meiyan.cli.train_cmds` adds :func:`train_abpn` to its ``train`` group;
``python -m meiyan.train.tasks.abpn_cli`` runs the same command on its own. torch is imported
only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meiyan.cli.train_cmds import _fit, _need_torch, trainer_options


@click.command("abpn")
@click.option(
    "--data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="The shared data folder (celeba-hq-1k, fasseg-multipose) to prepare FACES "
    "from when FACES does not exist yet.",
)
@click.option(
    "--faces",
    required=True,
    type=click.Path(dir_okay=False),
    help="The prepared faces file (.npz), made from --data when missing.",
)
@trainer_options("abpn", epochs=30, batch=8)
@click.option(
    "--size",
    default=256,
    show_default=True,
    type=click.IntRange(min=32),
    help="Training crop side, a multiple of 32.",
)
@click.option(
    "--width",
    default=32,
    show_default=True,
    type=click.IntRange(min=4),
    help="LRL base width (32: the shipped network).",
)
@click.option("--lr", default=2e-3, show_default=True, type=float, help="Adam learning rate.")
@click.option(
    "--moles-p",
    default=0.3,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of samples whose target has the moles removed.",
)
@click.option(
    "--init",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Start from these weights: an abpn checkpoint (.pt) or exported model (.onnx), "
    "such as the shipped one.",
)
@click.option(
    "--stage",
    default="all",
    show_default=True,
    type=click.Choice(["all", "lrl"]),
    help="lrl: train the local retouching layer alone on its quarter-resolution loss "
    "(cheap; the pyramid keeps --init's weights), then all to fine-tune.",
)
def train_abpn(**opts: Any) -> None:
    """Train ABPN on synthetic defects drawn into clean faces' skin."""
    _need_torch()
    from meiyan.train.tasks.abpn import AbpnConfig, AbpnTask, build_faces_file

    faces = Path(opts["faces"])
    if not faces.is_file():
        if opts["data"] is None:
            raise click.ClickException(f"no faces file at {faces}; give --data to prepare it")
        click.echo(f"preparing {faces} from {opts['data']} ...")
        build_faces_file(Path(opts["data"]), faces)
    try:
        task = AbpnTask(
            AbpnConfig(
                faces=str(faces),
                size=opts["size"],
                width=opts["width"],
                lr=opts["lr"],
                moles_p=opts["moles_p"],
                init=opts["init"],
                stage=opts["stage"],
            )
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    summary = _fit(task, opts)
    best = summary["best"]
    click.echo(
        f"best {best['metric']} {best['value']:.4f} (epoch {best['epoch']}); "
        f"checkpoints in {summary['out']}"
    )


if __name__ == "__main__":
    train_abpn()
