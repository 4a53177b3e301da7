"""The ``meiyan`` command line: the same core as the Python API, one command per job."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from meiyan import __version__
from meiyan.cli.batch import run_batch
from meiyan.cli.face_cmds import landmarks, mask
from meiyan.cli.makeup_cmds import makeup_cmd
from meiyan.cli.options import batch_options
from meiyan.cli.train_cmds import export, train
from meiyan.io.image import from_float, read_image, to_float, write_image
from meiyan.io.paths import output_path
from meiyan.retouch.beautify import FRECKLE_MODES, PRESETS, BeautifySettings, retouch
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth
from meiyan.skin import registry

STRENGTH = click.FloatRange(0.0, 1.0)


def _skin_choice() -> click.Choice:
    return click.Choice([*registry.available(), "none"])


def process_files(
    inputs: tuple[Path, ...],
    out_dir: Path,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    overwrite: bool,
    max_pixels: int,
    desc: str,
) -> None:
    """Read each input, apply ``fn`` to its RGB pixels, write the result; exit with the status."""

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        pixels = img.pixels
        if pixels.dtype == np.uint8:
            result = fn(pixels)
        else:  # 16-bit: process in float, keep the depth
            result = from_float(fn(to_float(pixels)), pixels.dtype)
        write_image(output_path(path, out_dir), result, like=img, overwrite=overwrite)

    sys.exit(run_batch(inputs, job, desc=desc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meiyan")
def main() -> None:
    """meiyan (美颜): AI portrait beautification."""


@main.command("smooth")
@batch_options
@click.option(
    "--filter",
    "filter_name",
    type=click.Choice(sorted(FILTER_SETTINGS)),
    default="guided",
    show_default=True,
    help="Edge-preserving filter.",
)
@click.option(
    "--strength", type=STRENGTH, default=0.5, show_default=True, help="0 leaves input as is."
)
@click.option("--texture", type=STRENGTH, default=0.5, show_default=True, help="Fine texture kept.")
@click.option(
    "--skin",
    type=_skin_choice(),
    default="auto",
    show_default=True,
    help="Skin segmenter; 'none' smooths the whole frame.",
)
def smooth_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    filter_name: str,
    strength: float,
    texture: float,
    skin: str,
) -> None:
    """Smooth the skin of each image IN (files or folders) into OUT."""
    process_files(
        inputs,
        out_dir,
        lambda px: smooth(px, filter=filter_name, strength=strength, skin=skin, texture=texture),
        overwrite=overwrite,
        max_pixels=max_pixels,
        desc="smooth",
    )


@main.command("beautify")
@batch_options
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="natural",
    show_default=True,
    help="Starting strengths; the options below override them.",
)
@click.option("--smooth", "smooth_s", type=STRENGTH, help="Skin smoothing [natural: 0.5].")
@click.option("--tone", type=STRENGTH, help="Even tone: redness, blotches [natural: 0.4].")
@click.option("--blemish", type=STRENGTH, help="Blemish removal [natural: 0.8].")
@click.option("--whiten", type=STRENGTH, help="Hue-keeping whitening [natural: 0.2].")
@click.option("--detail", type=STRENGTH, help="Lighten dark lines (high pass) [natural: 0].")
@click.option("--texture", type=STRENGTH, help="Fine texture kept by smoothing [natural: 0.5].")
@click.option(
    "--freckles",
    type=click.Choice(FRECKLE_MODES),
    help="Freckles under blemish removal [natural: keep].",
)
@click.option("--moles", is_flag=True, default=None, help="Remove moles too (kept by default).")
@click.option(
    "--filter",
    "filter_name",
    type=click.Choice(sorted(FILTER_SETTINGS)),
    help="Edge-preserving filter of the smoothing stage [guided].",
)
@click.option(
    "--skin",
    type=_skin_choice(),
    default="auto",
    show_default=True,
    help="Skin mask: 'auto' is each face's landmarks refined by its own skin colour; a "
    "segmenter name runs it on each face crop (and, with no face, smooths by it alone); "
    "'none' treats the whole frame as skin.",
)
@click.option(
    "--min-face",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Smallest face searched for, as a share of the long side [0.08]; smaller is slower.",
)
@click.option("--compare", is_flag=True, help="Also write NAME_compare: before | after.")
@click.option(
    "--save-masks",
    is_flag=True,
    help="Also write the skin and blemish masks as NAME_skin.png and NAME_blemish.png.",
)
def beautify_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    preset: str,
    smooth_s: float | None,
    tone: float | None,
    blemish: float | None,
    whiten: float | None,
    detail: float | None,
    texture: float | None,
    freckles: str | None,
    moles: bool | None,
    filter_name: str | None,
    skin: str,
    min_face: float | None,
    compare: bool,
    save_masks: bool,
) -> None:
    """Retouch each portrait IN (files or folders) into OUT: the main job.

    Faces are found and retouched each at a working resolution: blemishes healed, skin
    smoothed, its tone evened and whitened, confined to skin. Strength 0 everywhere writes the
    input pixels unchanged; a photo without a face is written unchanged with a warning.
    """
    from dataclasses import replace

    from meiyan.io.image import LoadedImage

    chosen = {
        "smooth": smooth_s,
        "tone": tone,
        "blemish": blemish,
        "whiten": whiten,
        "detail": detail,
        "texture": texture,
        "freckles": freckles,
        "moles": moles,
        "filter": filter_name,
        "min_face": min_face,
    }
    settings = BeautifySettings.preset(
        preset, skin=skin, **{k: v for k, v in chosen.items() if v is not None}
    )

    def write_mask(path: Path, img: LoadedImage, name: str, mask: np.ndarray) -> None:
        gray = replace(img, alpha=None, icc_profile=None, exif=None, grayscale=True)
        target = output_path(path, out_dir, f"_{name}.png")
        pixels = np.repeat(from_float(mask, np.uint8)[..., None], 3, axis=2)
        write_image(target, pixels, like=gray, overwrite=overwrite)

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        pixels = img.pixels
        if pixels.dtype == np.uint8:
            result = retouch(pixels, settings)
            out = result.image
        else:  # 16-bit: process in float, keep the depth
            result = retouch(to_float(pixels), settings)
            out = from_float(result.image, pixels.dtype)
        for message in result.warnings:
            click.echo(f"meiyan: warning: {path}: {message}", err=True)
        write_image(output_path(path, out_dir), out, like=img, overwrite=overwrite)
        if compare:
            side = output_path(path, out_dir, f"_compare{path.suffix}")
            write_image(side, np.hstack([pixels, out]), like=img, overwrite=overwrite)
        if save_masks:
            write_mask(path, img, "skin", result.skin_mask())
            write_mask(path, img, "blemish", result.blemish_mask())

    sys.exit(run_batch(inputs, job, desc="beautify"))


main.add_command(mask)
main.add_command(landmarks)
main.add_command(makeup_cmd)
main.add_command(train)
main.add_command(export)
