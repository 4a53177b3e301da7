"""``makeup()``: virtual looks or reference transfer on every face of a photo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from meiyan import engines
from meiyan._array import check_image, from_float32, to_float32
from meiyan.engines import EngineError
from meiyan.errors import NoFaceError
from meiyan.face import Face
from meiyan.makeup.colour import lab_to_rgb, rgb_to_lab
from meiyan.makeup.faces import FaceCrop, find_faces
from meiyan.makeup.looks import Look, get_look
from meiyan.makeup.regions import REGION_NAMES, check_regions
from meiyan.makeup.transfer import Reference, transfer_face
from meiyan.makeup.virtual import apply_look

ReferenceLike = np.ndarray | Reference
SLOT = engines.slot("makeup", "bench/makeup.py")
PSGAN = "psgan"


def _regions(regions: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    if regions is None:
        return tuple(default)
    if isinstance(regions, str):
        regions = [r.strip() for r in regions.split(",") if r.strip()]
    return check_regions(regions)


def _shades(shade: float | Mapping[str, float], regions: Sequence[str]) -> dict[str, float]:
    if isinstance(shade, Mapping):
        check_regions(shade)
        values = {r: float(shade.get(r, 1.0)) for r in regions}
    else:
        values = dict.fromkeys(regions, float(shade))
    for region, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"shade of {region} must be in [0, 1], got {value}")
    return values


def _references(
    reference: ReferenceLike | Mapping[str, ReferenceLike], regions: Sequence[str]
) -> dict[str, Reference]:
    """One :class:`Reference` per region, each distinct picture detected once (and arrays
    recalled from earlier calls: :meth:`Reference.recall`)."""
    if isinstance(reference, Mapping):
        check_regions(reference)
        chosen = {r: reference[r] for r in regions if r in reference}
    else:
        chosen = dict.fromkeys(regions, reference)
    made: dict[int, Reference] = {}
    out = {}
    for region, ref in chosen.items():
        if id(ref) not in made:
            made[id(ref)] = ref if isinstance(ref, Reference) else Reference.recall(ref)
        out[region] = made[id(ref)]
    return out


class ClassicMakeup:
    """The ``classic`` makeup engine: virtual looks as layers, and reference transfer by
    landmark warping and region-wise histogram matching in Lab."""

    looks = True

    def __call__(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        shades: dict[str, float],
        refs: dict[str, Reference] | None = None,
        look: Look | None = None,
    ) -> np.ndarray:
        out = image.copy()
        for face in faces:
            crop = FaceCrop.of(image, face)
            lab = rgb_to_lab(crop.rgb)
            if refs is not None:
                made = transfer_face(lab, crop.points, refs, shades)
            else:
                made = apply_look(lab, crop.points, look, shades)
            # Add the change, not the round trip, to the window only (the part of it where the
            # change is not 0): the rest stays bit-exact.
            change, (rows, cols) = crop.change_in_window(lab_to_rgb(made) - lab_to_rgb(lab))
            y0, x0 = crop.window.y0, crop.window.x0
            win = slice(y0 + rows.start, y0 + rows.stop), slice(x0 + cols.start, x0 + cols.stop)
            if image.dtype == np.uint8:
                out[win] = from_float32(to_float32(out[win]) + change, np.uint8)
            else:
                out[win] = np.clip(out[win] + change, 0.0, 1.0)
        return out


SLOT.register(
    "classic",
    ClassicMakeup,
    description="landmark-warped reference, region-wise Lab histogram matching; looks as layers",
)


def _psgan() -> object:
    from meiyan.makeup.psgan.engine import PsganEngine

    return PsganEngine()


SLOT.register(
    PSGAN,
    _psgan,
    description="PSGAN generator (Jiang et al. 2020, ONNX) for lips, skin and eye shadow, "
    "classical brows and blush; no model ships yet: give weights (meiyan convert psgan G.pth, "
    "or meiyan train psgan and meiyan export psgan)",
)


def _choose(engine: str, weights: str | Path | None) -> str:
    """The engine ``makeup`` runs: ``weights`` belong to ``psgan``, which ``auto`` then takes."""
    if weights is None:
        return SLOT.resolve(engine, job="makeup")
    if engine not in (engines.AUTO, PSGAN):
        raise EngineError(f"weights only apply to the {PSGAN!r} makeup engine, not {engine!r}")
    if not Path(weights).is_file():
        raise EngineError(f"{weights}: no such ONNX model")
    return PSGAN


def makeup(
    image: np.ndarray,
    reference: ReferenceLike | Mapping[str, ReferenceLike] | None = None,
    look: str | Look | None = None,
    regions: str | Sequence[str] | None = None,
    shade: float | Mapping[str, float] = 1.0,
    *,
    faces: Sequence[Face] | None = None,
    engine: str = "auto",
    weights: str | Path | None = None,
) -> np.ndarray:
    """Make up every face of an RGB ``image`` (uint8, or float32/float64 in [0, 1]).

    Give exactly one of ``reference`` (a photo of made-up face, as an RGB array or a
    :class:`Reference`; or a mapping from region to reference, to mix references: lips from
    one, eyes from another; the same array given again is not detected again,
    :meth:`Reference.recall`) and ``look`` (a name from :func:`meiyan.makeup.looks.look_names`,
    or a :class:`Look`). ``regions``: which of ``lips, eyes, skin, brows, blush`` to touch (a
    sequence or a comma-separated string; default: all, or the mapping's keys); ``shade``: 0-1,
    one value or a mapping per region, regions it leaves out at 1 (0 leaves a region unchanged,
    bit for bit). ``faces``: the photo's faces from :func:`meiyan.analyze` (found here when
    ``None``); ``engine``: the makeup engine (``SLOT.choices()``); ``weights``: an ONNX model for
    the ``psgan`` engine (from ``meiyan convert psgan`` or ``meiyan export psgan``; ``auto`` then
    takes ``psgan``), which needs them as long as no model ships.

    Returns an image of the input's shape and dtype. Raises :class:`~meiyan.errors.NoFaceError`
    when the image or a reference has no detectable face, and
    :class:`~meiyan.engines.EngineError` when the engine cannot honour the request (a virtual
    look with an engine that only transfers, ``psgan`` without weights).
    """
    if (reference is None) == (look is None):
        raise ValueError("give exactly one of reference= and look=")
    image = check_image(image)
    if reference is not None and isinstance(reference, Mapping):
        chosen = _regions(regions, [r for r in REGION_NAMES if r in reference])
    else:
        chosen = _regions(regions, REGION_NAMES)
    shades = _shades(shade, chosen)
    if not any(shades.values()):
        return image.copy()
    name = _choose(engine, weights)
    the_engine = SLOT.get(name, job="makeup")
    if look is not None and not getattr(the_engine, "looks", False):
        raise EngineError(f"makeup engine {name!r} cannot paint a virtual look; give reference=")
    if weights is not None:
        the_engine = partial(the_engine, weights=Path(weights))
    if faces is None:
        faces = find_faces(image, "image")
    elif not faces:
        raise NoFaceError("no face found in the image")
    if reference is not None:
        refs = _references(reference, [r for r in chosen if shades[r] > 0])
        return the_engine(image, faces, shades, refs=refs)
    the_look = get_look(look) if isinstance(look, str) else look
    return the_engine(image, faces, shades, look=the_look)
