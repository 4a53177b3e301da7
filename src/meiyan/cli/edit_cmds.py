"""``meiyan edit`` (erase, sketch, colour, fill: SC-FEGAN) and ``meiyan convert sc-fegan``.

Registered on the main group by :mod:`meiyan.cli.main`; nothing here imports from there.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click
import numpy as np

from meiyan.cli.batch import run_batch
from meiyan.cli.options import batch_options
from meiyan.edit.api import SLOT, EditError, edit
from meiyan.engines import EngineWarning
from meiyan.errors import MeiyanError
from meiyan.io.image import LoadedImage, read_image, write_image
from meiyan.io.paths import output_path
from meiyan.serve.options import settings_option

# ITU-R BT.601 luma weights, as PIL's "L" conversion.
LUMA = np.array([0.299, 0.587, 0.114])


def _above_127(a: np.ndarray) -> np.ndarray:
    """Where ``a`` (uint8, or uint16 scaled alike) is above 127 of 255."""
    return a > np.iinfo(a.dtype).max * 127 / 255


def _lines(img: LoadedImage) -> np.ndarray:
    """Where the luminance is above 127."""
    luma = img.pixels.astype(np.float64) @ LUMA
    return luma > np.iinfo(img.pixels.dtype).max * 127 / 255


def _guide(path: Path | None, shape: tuple[int, int], what: str,
           max_pixels: int) -> LoadedImage | None:
    if path is None:
        return None
    img = read_image(path, max_pixels=max_pixels)
    if img.pixels.shape[:2] != shape:
        h, w = img.pixels.shape[:2]
        raise EditError(f"{path}: {what} is {w}x{h}, the image is {shape[1]}x{shape[0]} "
                        f"(after EXIF orientation)")
    return img


def _mask(img: LoadedImage) -> np.ndarray:
    """Where alpha (if any), else luminance, is above 127 of 255."""
    return _lines(img) if img.alpha is None else _above_127(img.alpha)


def _colour(img: LoadedImage) -> np.ndarray:
    """RGBA (alpha marks strokes) when the file has alpha, else RGB (black: no colour)."""
    if img.alpha is None:
        return img.pixels
    return np.dstack([img.pixels, img.alpha])


@click.command("edit")
@batch_options
@settings_option("edit")
@click.option("--mask", "mask_path", required=True, type=click.Path(path_type=Path),
              help="Region to fill: luminance above 127 (or alpha above 127 when it has alpha).")
@click.option("--sketch", "sketch_path", type=click.Path(path_type=Path),
              help="White lines on black (luminance above 127): shapes to follow in the hole.")
@click.option("--colour", "--color", "colour_path", type=click.Path(path_type=Path),
              help="Colour strokes: RGBA with alpha marking them, or RGB where black is none.")
@click.option("--engine", type=click.Choice(SLOT.choices()), default="auto", show_default=True,
              help="'sc-fegan' (needs --weights until a model ships), 'classic' (a membrane "
                   "fill that follows the sketch and colours), 'telea' (OpenCV inpainting, no "
                   "guidance) or 'auto'.")
@click.option("--weights", type=click.Path(path_type=Path),
              help="SC-FEGAN generator as ONNX (from `meiyan convert sc-fegan`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise input.")
def edit_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    mask_path: Path,
    sketch_path: Path | None,
    colour_path: Path | None,
    engine: str,
    weights: Path | None,
    seed: int,
) -> None:
    """Erase the region MASK of each image IN and fill it, following SKETCH and COLOUR.

    Each guide must be the size of the image as displayed. Outside the mask every pixel is
    kept exactly; an empty mask writes the image unchanged.
    """
    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        shape = img.pixels.shape[:2]
        mask = _guide(mask_path, shape, "the mask", max_pixels)
        sketch = _guide(sketch_path, shape, "the sketch", max_pixels)
        colour = _guide(colour_path, shape, "the colour", max_pixels)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EngineWarning)
            try:
                result = edit(img.pixels, _mask(mask), engine=engine, seed=seed, weights=weights,
                              sketch=None if sketch is None else _lines(sketch),
                              colour=None if colour is None else _colour(colour))
            except MeiyanError as e:
                raise MeiyanError(f"{path}: {e}") from e
        for w in {str(w.message) for w in caught}:
            click.echo(f"meiyan: warning: {path}: {w}", err=True)
        write_image(output_path(path, out_dir), result, like=img, overwrite=overwrite)

    sys.exit(run_batch(inputs, job, desc="edit"))


@click.command("sc-fegan")
@click.argument("prefix", metavar="CKPT_PREFIX")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ONNX file to write.")
@click.option("--size", type=click.IntRange(min=128), default=512, show_default=True,
              help="Working size stored in the model (a multiple of 128; official: 512).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def convert_sc_fegan(prefix: str, output: Path, size: int, overwrite: bool) -> None:
    """Convert the official SC-FEGAN TensorFlow checkpoint CKPT_PREFIX (its .index and .data
    files, e.g. ckpt/SC-FEGAN.ckpt) to ONNX; no TensorFlow needed."""
    if size % 128:
        raise click.BadParameter(f"must be a multiple of 128, got {size}", param_hint="--size")
    if output.exists() and not overwrite:
        click.echo(f"meiyan: error: {output} exists (use --overwrite)", err=True)
        sys.exit(1)
    try:
        from meiyan.edit.convert import convert_official
    except ImportError as e:
        click.echo(f"meiyan: error: conversion needs PyTorch and onnx "
                   f"(pip install meiyan[train]): {e}", err=True)
        sys.exit(1)
    try:
        error = convert_official(prefix, output, size=size)
    except MeiyanError as e:
        click.echo(f"meiyan: error: {e}", err=True)
        sys.exit(1)
    click.echo(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB; "
               f"max |onnx - torch| {error:.2e})")
