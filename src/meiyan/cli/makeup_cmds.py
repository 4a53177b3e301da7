"""``meiyan makeup``: reference makeup transfer or a named virtual look, over files and folders.

Registered on the main group by :mod:`meiyan.cli.main`; it imports nothing from there, so
that module can import this one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from meiyan.cli.batch import run_batch
from meiyan.cli.options import batch_options
from meiyan.errors import MeiyanError
from meiyan.io.image import from_float, read_image, to_float, write_image
from meiyan.io.paths import output_path
from meiyan.makeup import REGION_NAMES, NoFaceError, Reference, look_names, makeup


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
            loaded[path] = _load_reference(path, max_pixels)
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
def makeup_cmd(
    inputs: tuple[Path, ...],
    out_dir: Path,
    references: tuple[str, ...],
    look: str | None,
    regions: str,
    shade: str,
    overwrite: bool,
    max_pixels: int,
) -> None:
    """Make up every face of each image IN (files or folders) into OUT, from a reference
    photo (--reference) or a named look (--look)."""
    if bool(references) == bool(look):
        raise click.UsageError("give either --reference or --look")
    chosen = [r.strip() for r in regions.split(",") if r.strip()]
    if not chosen or any(r not in REGION_NAMES for r in chosen):
        raise click.BadParameter(
            f"choose from {', '.join(REGION_NAMES)}, got {regions!r}", param_hint="--regions"
        )
    shades = _parse_shade(shade)
    ref = _references(references, max_pixels) if references else None

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        pixels = img.pixels
        kwargs = {"reference": ref, "look": look, "regions": chosen, "shade": shades}
        try:
            if pixels.dtype == np.uint8:
                result = makeup(pixels, **kwargs)
            else:  # 16-bit: process in float, keep the depth
                result = from_float(makeup(to_float(pixels), **kwargs), pixels.dtype)
        except NoFaceError as e:
            raise NoFaceError(f"{path}: {e}") from e
        write_image(output_path(path, out_dir, ".png"), result, like=img, overwrite=overwrite)

    sys.exit(run_batch(inputs, job, desc="makeup"))
