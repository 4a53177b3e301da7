"""The ``meiyan`` command line: the same core as the Python API, one command per job."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from meiyan import __version__
from meiyan.cli.batch import run_batch
from meiyan.io.image import DEFAULT_MAX_PIXELS, from_float, read_image, to_float, write_image
from meiyan.io.paths import output_path
from meiyan.retouch.beautify import BeautifySettings, beautify
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth
from meiyan.skin import registry

STRENGTH = click.FloatRange(0.0, 1.0)


def _skin_choice() -> click.Choice:
    return click.Choice([*registry.available(), "none"])


def io_options(fn: Callable) -> Callable:
    """The options every image-writing command shares."""
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
@io_options
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
@io_options
@click.option(
    "--smooth", "smooth_s", type=STRENGTH, default=0.5, show_default=True, help="Smoothing."
)
@click.option(
    "--detail", type=STRENGTH, default=0.5, show_default=True, help="High-pass detail reduction."
)
@click.option("--texture", type=STRENGTH, default=0.5, show_default=True, help="Fine texture kept.")
@click.option(
    "--filter",
    "filter_name",
    type=click.Choice(sorted(FILTER_SETTINGS)),
    default="guided",
    show_default=True,
    help="Edge-preserving filter of the smoothing stage.",
)
@click.option(
    "--skin", type=_skin_choice(), default="auto", show_default=True, help="Skin segmenter."
)
def beautify_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    smooth_s: float,
    detail: float,
    texture: float,
    filter_name: str,
    skin: str,
) -> None:
    """Retouch each portrait IN (files or folders) into OUT: the main job."""
    settings = BeautifySettings(
        smooth=smooth_s, detail=detail, texture=texture, filter=filter_name, skin=skin
    )
    process_files(
        inputs,
        out_dir,
        lambda px: beautify(px, settings),
        overwrite=overwrite,
        max_pixels=max_pixels,
        desc="beautify",
    )
