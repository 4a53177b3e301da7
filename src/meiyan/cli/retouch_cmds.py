"""``meiyan smooth`` and ``meiyan beautify``: skin smoothing and the main retouching job."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from meiyan.cli.batch import Output, run_batch, warn
from meiyan.cli.engine_options import device_option, engine_option, min_face_option
from meiyan.cli.options import batch_options
from meiyan.face import analyze
from meiyan.io.image import from_float, read_image, to_float
from meiyan.retouch.beautify import FRECKLE_MODES, PRESETS, BeautifySettings, retouch
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth
from meiyan.serve.options import settings_option
from meiyan.skin import choices as skin_choices

STRENGTH = click.FloatRange(0.0, 1.0)


def _skin_choice() -> click.Choice:
    return click.Choice([*skin_choices(), "none"])


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
    output = Output.of(out_dir, overwrite)

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        pixels = img.pixels
        if pixels.dtype == np.uint8:
            result = fn(pixels)
        else:  # 16-bit: process in float, keep the depth
            result = from_float(fn(to_float(pixels)), pixels.dtype)
        output.image(path, result, like=img)

    sys.exit(run_batch(inputs, job, desc=desc, output=output))


@click.command("smooth")
@batch_options
@settings_option("smooth")
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
    help="Skin segmenter (auto: the best within this job's speed budget); 'none' smooths the "
    "whole frame. A photo without a face is written unchanged with a warning.",
)
@min_face_option
@device_option
def smooth_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    filter_name: str,
    strength: float,
    texture: float,
    skin: str,
    min_face: float,
) -> None:
    """Smooth the skin of each image IN (files or folders) into OUT."""
    from meiyan.skin import SLOT as SKIN

    needs_faces = skin != "none" and SKIN.get(skin, job="smooth").needs_faces

    def fn(px: np.ndarray) -> np.ndarray:
        faces = analyze(px, min_face=min_face) if needs_faces and strength > 0 else None
        return smooth(
            px, filter=filter_name, strength=strength, skin=skin, texture=texture, faces=faces
        )

    process_files(inputs, out_dir, fn, overwrite=overwrite, max_pixels=max_pixels, desc="smooth")


@click.command("beautify")
@batch_options
@settings_option("beautify")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="natural",
    show_default=True,
    help="Starting strengths; the options below override them.",
)
@click.option("--smooth", "smooth_s", type=STRENGTH, help="Skin smoothing [natural: 0.9].")
@click.option("--tone", type=STRENGTH, help="Even tone: redness, blotches [natural: 0.4].")
@click.option("--blemish", type=STRENGTH, help="Blemish removal [natural: 0.8].")
@click.option("--whiten", type=STRENGTH, help="Hue-keeping whitening [natural: 0.2].")
@click.option("--detail", type=STRENGTH, help="Lighten dark lines (high pass) [natural: 0].")
@click.option("--texture", type=STRENGTH, help="Fine texture kept by smoothing [natural: 0.4].")
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
    help="Skin segmenter run on each face crop with its landmarks (auto: the best by "
    "bench/skin_iou.py, today 'unet': forehead to hairline, neck and ears); 'none' treats the "
    "whole frame as skin.",
)
@min_face_option
@engine_option("retouch", "Retouching engine (auto: the best by bench/retouch.py).")
@device_option
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
    min_face: float,
    engine: str,
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
    }
    settings = BeautifySettings.preset(
        preset,
        skin=skin,
        min_face=min_face,
        engine=engine,
        **{k: v for k, v in chosen.items() if v is not None},
    )

    products = [("", None)] + [("_compare", None)] * compare
    products += [("_skin", ".png"), ("_blemish", ".png")] * save_masks
    output = Output.of(out_dir, overwrite, *products)

    def write_mask(path: Path, img: LoadedImage, name: str, mask: np.ndarray) -> None:
        gray = replace(img, alpha=None, icc_profile=None, exif=None, grayscale=True)
        pixels = np.repeat(from_float(mask, np.uint8)[..., None], 3, axis=2)
        output.image(path, pixels, tag=f"_{name}", suffix=".png", like=gray)

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
            warn(message)
        output.image(path, out, like=img)
        if compare:
            output.image(path, np.hstack([pixels, out]), tag="_compare", like=img)
        if save_masks:
            write_mask(path, img, "skin", result.skin_mask())
            write_mask(path, img, "blemish", result.blemish_mask())

    sys.exit(run_batch(inputs, job, desc="beautify", output=output))
