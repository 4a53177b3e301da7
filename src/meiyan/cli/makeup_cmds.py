"""``meiyan makeup``: reference makeup transfer or a named virtual look, over files and folders.

Registered on the main group by :mod:`meiyan.cli.main`; it imports nothing from there, so
that module can import this one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from meiyan.cli.batch import Output, isolated, run_batch
from meiyan.cli.engine_options import (
    device_option,
    engine_option,
    min_face_option,
    weights_option,
)
from meiyan.cli.options import batch_options
from meiyan.errors import MeiyanError, NoFaceError
from meiyan.face import analyze
from meiyan.io.image import from_float, read_image, to_float
from meiyan.makeup import REGION_NAMES, Reference, look_names, makeup
from meiyan.makeup.api import PSGAN
from meiyan.makeup.psgan.engine import NO_MODEL
from meiyan.serve.options import settings_option


def _fail(message: str) -> None:
    click.echo(f"meiyan: error: {message}", err=True)
    sys.exit(2)


def _split_region(value: str) -> tuple[str | None, str]:
    """``"lips=VALUE"`` -> ``("lips", "VALUE")``; anything else -> ``(None, value)``."""
    head, sep, tail = value.partition("=")
    if sep and head.strip() in REGION_NAMES:
        return head.strip(), tail
    return None, value


def _parse_shade(value: str) -> float | dict[str, float]:
    """``"0.7"`` for every region, or ``"lips=1,skin=0.4"`` per region."""
    try:
        if "=" not in value:
            shade = float(value)
            if not 0.0 <= shade <= 1.0:
                raise ValueError
            return shade
        shades = {}
        for item in value.split(","):
            region, number = _split_region(item.strip())
            if region is None:
                raise ValueError
            shades[region] = float(number)
            if not 0.0 <= shades[region] <= 1.0:
                raise ValueError
        return shades
    except ValueError:
        raise click.BadParameter(
            f"expected a number in [0, 1] or REGION=S pairs such as lips=1,skin=0.4 "
            f"(regions: {', '.join(REGION_NAMES)}), got {value!r}",
            param_hint="--shade",
        ) from None


def _load_reference(path: Path, max_pixels: int) -> Reference:
    img = read_image(path, max_pixels=max_pixels)
    pixels = img.pixels if img.pixels.dtype == np.uint8 else to_float(img.pixels)
    try:
        return Reference.of(pixels)
    except MeiyanError as e:
        raise MeiyanError(f"{path}: {e}") from e


def _references(values: tuple[str, ...], max_pixels: int) -> Reference | dict[str, Reference]:
    """``--reference`` values: one path for every region, and/or ``REGION=PATH`` pairs."""
    default: Path | None = None
    per_region: dict[str, Path] = {}
    for value in values:
        region, path = _split_region(value)
        if region is None:
            if default is not None:
                _fail("give one --reference PATH; use REGION=PATH for more (lips=a.png)")
            default = Path(path)
        else:
            per_region[region] = Path(path)
    loaded: dict[Path, Reference] = {}
    for path in {*per_region.values(), *([default] if default else [])}:
        try:
            loaded[path] = isolated(_load_reference, path, max_pixels)
        except MeiyanError as e:
            _fail(str(e))
    if default is not None and not per_region:
        return loaded[default]
    mixed = {r: loaded[p] for r, p in per_region.items()}
    if default is not None:
        mixed = {r: mixed.get(r, loaded[default]) for r in REGION_NAMES}
    return mixed


@click.command("makeup")
@batch_options
@settings_option("makeup")
@click.option(
    "--reference",
    "references",
    multiple=True,
    metavar="[REGION=]PATH",
    help="Photo of a made-up face to copy from; repeat as REGION=PATH to mix references "
    "(e.g. --reference lips=a.png --reference eyes=b.png).",
)
@click.option(
    "--look",
    type=click.Choice(look_names()),
    help="Named virtual look instead of a reference.",
)
@click.option(
    "--regions",
    default=",".join(REGION_NAMES),
    show_default=True,
    help="Comma-separated regions to make up.",
)
@click.option(
    "--shade",
    default="1",
    show_default=True,
    help="Strength 0-1 (0 leaves the photo as is), or per region: lips=1,skin=0.4.",
)
@min_face_option
@engine_option(
    "makeup", "Makeup engine (auto: the best by bench/makeup.py; psgan needs --weights)."
)
@weights_option
@device_option
def makeup_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    references: tuple[str, ...],
    look: str | None,
    regions: str,
    shade: str,
    overwrite: bool,
    max_pixels: int,
    min_face: float,
    engine: str,
    weights: Path | None,
) -> None:
    """Make up every face of each image IN (files or folders) into OUT, from a reference
    photo (--reference) or a named look (--look)."""
    if bool(references) == bool(look):
        raise click.UsageError("give either --reference or --look")
    if engine == PSGAN and weights is None:
        _fail(NO_MODEL)
    if weights is not None and engine not in ("auto", PSGAN):
        raise click.UsageError(f"--weights only applies to --engine {PSGAN}, not {engine}")
    chosen = [r.strip() for r in regions.split(",") if r.strip()]
    if not chosen or any(r not in REGION_NAMES for r in chosen):
        raise click.BadParameter(
            f"choose from {', '.join(REGION_NAMES)}, got {regions!r}", param_hint="--regions"
        )
    shades = _parse_shade(shade)
    ref = _references(references, max_pixels) if references else None
    output = Output.of(out_dir, overwrite, ("", ".png"))

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        pixels = img.pixels
        rgb = pixels if pixels.dtype == np.uint8 else to_float(pixels)
        faces = analyze(rgb, min_face=min_face)
        if not faces:
            raise NoFaceError(f"{path}: no face found in the image")
        kwargs = {"reference": ref, "look": look, "regions": chosen, "shade": shades}
        result = makeup(rgb, faces=faces, engine=engine, weights=weights, **kwargs)
        if pixels.dtype != np.uint8:  # 16-bit: processed in float, the depth kept
            result = from_float(result, pixels.dtype)
        output.image(path, result, suffix=".png", like=img)

    sys.exit(run_batch(inputs, job, desc="makeup", output=output))
