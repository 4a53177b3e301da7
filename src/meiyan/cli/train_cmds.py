"""``meiyan train`` and ``meiyan export``: training and ONNX export of meiyan's networks.

Every task of :mod:`meiyan.train.tasks` runs on :class:`meiyan.train.trainer.Trainer`; its
``meiyan train`` command combines the trainer's options (:func:`trainer_options`) with its own,
and ``meiyan export NAME`` exists for every registered task. torch is imported inside the
commands only, so ``meiyan --help`` and every inference command work without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from meiyan.errors import MeiyanError
from meiyan.train.tasks import TASKS


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


def trainer_options(task: str, epochs: int = 100, batch: int = 8) -> Callable:
    """The trainer's options (``--out``, ``--epochs``, ``--batch``, ``--workers``, ``--device``,
    ``--seed``, ``--threads``, ``--resume``, ``--no-amp``) for the command of ``task``."""
    options = [
        click.option("--out", default=None, type=click.Path(file_okay=False),
                     help=f"Run folder for last.pt, best.pt and log.jsonl "
                     f"[default: ~/.cache/meiyan/runs/{task}]."),
        click.option("--epochs", default=epochs, show_default=True, type=click.IntRange(min=1)),
        click.option("--batch", default=batch, show_default=True, type=click.IntRange(min=1),
                     help="Batch size per process (per GPU under torchrun)."),
        click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0),
                     help="DataLoader worker processes (0: load in the training process)."),
        click.option("--device", default="auto", show_default=True,
                     type=click.Choice(["auto", "cpu", "cuda"]),
                     help="auto: CUDA when torch sees a GPU."),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0)),
        click.option("--threads", default=None, type=click.IntRange(min=1),
                     help="CPU threads for torch (default: torch's choice)."),
        click.option("--resume", is_flag=True, help="Continue from OUT/last.pt."),
        click.option("--no-amp", is_flag=True, help="No mixed precision on CUDA."),
    ]

    def decorate(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _fit(task: Any, opts: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` with the trainer options in ``opts``; errors become one-line messages."""
    from meiyan.train.trainer import Trainer, TrainerConfig

    cfg = TrainerConfig(out=opts["out"], epochs=opts["epochs"], batch=opts["batch"],
                        workers=opts["workers"], device=opts["device"], seed=opts["seed"],
                        threads=opts["threads"], resume=opts["resume"], amp=not opts["no_amp"])
    try:
        return Trainer(task, cfg).fit()
    except (MeiyanError, ValueError) as e:
        raise click.ClickException(str(e)) from e


@train.command("skin-pack")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="The shared data folder (lfw-parts/, fasseg-multipose/, celeba-hq-1k/).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .npz pack to write.")
@click.option("--datasets", default="lfw,fasseg,celeba", show_default=True,
              help="Comma-separated datasets to pack.")
@click.option("--quality", default=90, show_default=True, type=click.IntRange(50, 100),
              help="JPEG quality of the stored photos.")
def train_skin_pack(data: str, output: str, datasets: str, quality: int) -> None:
    """Frame the labelled skin datasets as the U-Net sees them, into one training file."""
    from meiyan.train.skin_data import DATASETS, pack

    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise click.BadParameter(f"unknown datasets {unknown}; choose from {list(DATASETS)}")
    if Path(output).exists():
        raise click.ClickException(f"{output} exists; remove it or choose another name")
    try:
        counts = pack(Path(data), Path(output), names, quality, progress=click.echo)
    except MeiyanError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{sum(counts.values())} photos in {output} ({Path(output).stat().st_size:,} bytes)")


@train.command("skin-unet")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True),
    help="images/ with masks/ or labels/ (FASSEG), an LFW Part Labels folder, or a pack "
    "made by `meiyan train skin-pack`.",
)
@trainer_options("skin-unet")
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
@click.option("--init", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Start from this exported .onnx model or checkpoint (same width).")
@click.option("--min-share", default=0.25, show_default=True,
              type=click.FloatRange(0, 1, min_open=True),
              help="A pack's smaller datasets are repeated to give at least this share of the "
              "largest one's samples per epoch.")
def train_skin_unet(**opts: Any) -> None:
    """Train the U-Net skin segmenter (seed recipe: Adam, binary cross-entropy)."""
    _need_torch()
    from meiyan.train.tasks.skin_unet import SkinUNetConfig, SkinUNetTask

    try:
        task = SkinUNetTask(SkinUNetConfig(
            data=str(opts["data"]), val_split=opts["val_split"], width=opts["width"],
            size=opts["size"], loss=opts["loss"], lr=opts["lr"], schedule=opts["schedule"],
            skin_labels=_labels(opts["skin_labels"]), augment=not opts["no_augment"],
            init=opts["init"], min_share=opts["min_share"],
        ))
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    summary = _fit(task, opts)
    best = summary["best"]
    click.echo(f"best {best['metric']} {best['value']:.4f} (epoch {best['epoch']}); "
               f"checkpoints in {summary['out']}")


@train.command("psgan")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="A pack from `meiyan train psgan-pack`, or the shared data folder (packed "
              "into ~/.cache/meiyan/data first).")
@trainer_options("psgan", epochs=20, batch=4)
@click.option("--lr", default=2e-4, show_default=True, type=float, help="Adam learning rate.")
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Epochs of the cheap losses alone (L1 to the target, cycle): for CPU.")
@click.option("--worn", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of training sources already wearing another look.")
@click.option("--vgg", default=None, type=click.Path(exists=True, dir_okay=False),
              help="VGG-16 weights (.h5 or .pth) for the perceptual loss [default: HED's trunk].")
@click.option("--init", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Start the generator from an official G.pth or a psgan checkpoint.")
@click.option("--limit", default=None, type=click.IntRange(min=2),
              help="Train on the first N faces of the pack only.")
@click.option("--val-limit", default=32, show_default=True, type=click.IntRange(min=2),
              help="Held-out faces whose triples validate.")
def train_psgan(**opts: Any) -> None:
    """Train PSGAN on synthetic triples (virtual looks on bare faces)."""
    _need_torch()
    from meiyan.train.psgan_data import cached_pack
    from meiyan.train.tasks.psgan import PSGANConfig, PSGANTask

    data = Path(opts["data"])
    if data.is_dir():
        data = cached_pack(data, progress=click.echo)
    try:
        task = PSGANTask(PSGANConfig(
            data=str(data), lr=opts["lr"], warmup_epochs=opts["warmup_epochs"],
            worn=opts["worn"], vgg=opts["vgg"], init=opts["init"], limit=opts["limit"],
            val_limit=opts["val_limit"],
        ))
    except (ValueError, MeiyanError) as e:
        raise click.ClickException(str(e)) from e
    summary = _fit(task, opts)
    best = summary["best"]
    click.echo(f"best {best['metric']} {best['value']:.2f} dB (epoch {best['epoch']}); "
               f"checkpoints in {summary['out']}")


@click.group()
def export() -> None:
    """Export a trained network to ONNX (needs the `train` extra)."""


def _export_options(name: str) -> list[Callable]:
    """Options of ``meiyan export NAME`` beyond the checkpoint and the output, passed to the
    task's ``export``."""
    if name == "psgan":
        from meiyan.cli.psgan_cmds import precision_option

        return [precision_option]
    return []


def _export_command(name: str) -> click.Command:
    @click.command(name, help=f"Export a {name} checkpoint to ONNX and check it against torch.")
    @click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                  help="The .onnx file to write.")
    def command(checkpoint: str, output: str, **options: Any) -> None:
        _need_torch()
        from meiyan.train.trainer import load_task

        try:
            diff = load_task(checkpoint, name).export(Path(output), **options)
        except MeiyanError as e:
            raise click.ClickException(str(e)) from e
        click.echo(f"wrote {output} (max |onnx - torch| = {diff:.2e})")

    for option in _export_options(name):
        command = option(command)
    return command


for _name in TASKS:
    export.add_command(_export_command(_name))


def _register_task_commands() -> None:
    """The networks whose training has options of its own have their own commands."""
    from meiyan.train.psgan_data import train_psgan_pack
    from meiyan.train.sc_fegan_cli import train_sc_fegan
    from meiyan.train.tasks.abpn_cli import train_abpn

    train.add_command(train_sc_fegan)
    train.add_command(train_abpn)
    train.add_command(train_psgan_pack)


_register_task_commands()
