"""Skin segmentation: colour rules, landmark geometry and learned models behind one slot.

Every segmenter is an engine of the ``skin`` slot (:mod:`meiyan.engines`): a callable
``(image, faces) -> (H, W) float32 mask in [0, 1]`` with a ``needs_faces`` flag. ``auto`` is
the face-based segmenter with the best mean IoU on ``bench/skin_iou.py`` among those within the
job's speed budget; colour rules are fall-backs for photos without a face, never ``auto``'s
choice (they take skin-coloured walls, wood and sand for skin).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from meiyan import engines
from meiyan._array import Mask, check_rgb
from meiyan.errors import NoFaceWarning
from meiyan.face import Face

SLOT = engines.slot("skin", "bench/skin_iou.py")
FALLBACK = "color"
"""The colour rule used where a face-based segmenter finds no face."""


RULE_PIXELS = 1920 * 1080
"""Colour rules are evaluated on at most this many pixels; larger photos on a reduced copy,
the soft mask enlarged (a per-pixel rule gains nothing from 24 megapixels but time and
memory)."""


class ColourRule:
    """A colour-space rule as a segmenter: faces are not needed and not used."""

    needs_faces = False

    def __init__(self, rule: Callable[[np.ndarray], Mask]) -> None:
        self.rule = rule

    def __call__(self, image: np.ndarray, faces: Sequence[Face] = ()) -> Mask:
        h, w = image.shape[:2]
        if h * w <= RULE_PIXELS:
            return self.rule(image)
        s = (RULE_PIXELS / (h * w)) ** 0.5
        small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        return cv2.resize(self.rule(small), (w, h), interpolation=cv2.INTER_LINEAR)


def _colour(name: str) -> Callable[[], ColourRule]:
    def make() -> ColourRule:
        from meiyan.skin import color

        return ColourRule(getattr(color, f"{name}_mask"))

    return make


def _engine(module: str, cls: str) -> Callable[[], object]:
    def make() -> object:
        import importlib

        return getattr(importlib.import_module(f"meiyan.skin.{module}"), cls)()

    return make


# Scores: mean of the IoUs on FASSEG test and LFW validation (bench/skin_iou.py, README: data
# never trained or chosen on), so that ``auto`` is the best across studio and in-the-wild
# photos (unet 0.916 and 0.820; adaptive 0.905 and 0.717: unet leads on each); jobs: those whose
# speed budget the engine meets at 1080p on 2 cores (bench/speed.py): skin_mask 80 ms, smooth
# 100 ms; beautify takes the best segmenter that knows its crops.
SLOT.register("ycrcb", _colour("ycrcb"), description="YCrCb colour rule (Chai and Ngan 1999)")
SLOT.register("color", _colour("ycrcb"), description="the YCrCb colour rule")
SLOT.register("hsv", _colour("hsv"), description="HSV colour rule")
SLOT.register("rgb", _colour("rgb"), description="RGB colour rule (Kovac et al. 2003)")
SLOT.register(
    "classic",
    _engine("classic", "ClassicSkinSegmenter"),
    score=0.647,
    jobs=("skin_mask", "smooth", "beautify"),
    description="each face's landmark mask refined by its own skin colour",
)
SLOT.register(
    "face",
    _engine("landmarks", "LandmarkSkinSegmenter"),
    score=0.568,
    jobs=("skin_mask", "smooth", "beautify"),
    description="landmark geometry: face oval less the features",
)
SLOT.register(
    "adaptive",
    _engine("adaptive", "AdaptiveSkinSegmenter"),
    score=0.811,
    jobs=(),
    description="per-image colour model seeded by the landmarks, GrabCut, person mask",
)
SLOT.register(
    "unet",
    _engine("unet_onnx", "UNetSkinSegmenter"),
    models=("skin-unet",),
    score=0.868,
    jobs=("skin_mask", "smooth", "beautify"),
    description="the seed's U-Net on a window per face, limited to the person, body skin "
    "from its colours",
)


def choices() -> list[str]:
    """Every name a job's ``skin`` setting takes: ``auto`` and the engines."""
    return SLOT.choices()


def skin_mask(
    image: np.ndarray,
    method: str = "auto",
    *,
    faces: Sequence[Face] | None = None,
    job: str = "skin_mask",
) -> Mask:
    """Soft skin mask of an RGB image (uint8 or float32): float32 ``(H, W)`` in [0, 1].

    ``method`` names a segmenter (:func:`choices`); ``auto`` is the best by
    ``bench/skin_iou.py`` within ``job``'s speed budget. Face-based segmenters use ``faces``
    (found with :func:`meiyan.face.analyze` when ``None``); where there is none they fall back
    to the colour rule with a :class:`NoFaceWarning`.
    """
    check_rgb(image)
    segmenter = SLOT.get(method, job=job)
    extra: dict[str, np.ndarray] = {}
    if segmenter.needs_faces:
        if faces is None:
            faces, extra = find_faces(segmenter, image)
        if not faces:
            warnings.warn(
                f"no face found: skin from the {FALLBACK!r} colour rule instead",
                NoFaceWarning,
                stacklevel=2,
            )
            segmenter, extra = SLOT.get(FALLBACK), {}
    return segment(segmenter, image, faces or (), extra)


def find_faces(segmenter: object, image: np.ndarray) -> tuple[list[Face], dict[str, np.ndarray]]:
    """The faces of ``image`` (:func:`meiyan.face.analyze`) and the inputs ``segmenter`` takes
    besides them: a segmenter that uses the person mask (``uses_person``) gets it, with the
    reduced copy of the photo it was worked out on, made beside the face pass."""
    from meiyan.face import analyze
    from meiyan.face.person import analyze_beside, person_and_copy

    if not getattr(segmenter, "uses_person", False):
        return analyze(image), {}
    faces, (person, rgb) = analyze_beside(image, person_and_copy)
    return faces, {"person": person, "person_rgb": rgb}


def segment(
    segmenter: Callable[..., Mask],
    image: np.ndarray,
    faces: Sequence[Face],
    extra: dict[str, np.ndarray],
    coarse: bool = False,
) -> Mask:
    """``segmenter``'s mask of ``image`` with ``faces`` and the ``extra`` inputs of
    :func:`find_faces`: float32, clipped to [0, 1] in place (no copy of a segmenter's own
    array). ``coarse``: the mask as a segmenter that makes it at a reduced size has it, before
    enlarging it (its ``coarse`` method; any size with the photo's aspect), for a job that
    works at a reduced size anyway; other segmenters give it at the photo's size."""
    run = getattr(segmenter, "coarse", segmenter) if coarse else segmenter
    mask = run(image, faces, **extra).astype(np.float32, copy=False)
    return np.clip(mask, 0.0, 1.0, out=mask)


__all__ = [
    "FALLBACK",
    "SLOT",
    "ColourRule",
    "NoFaceWarning",
    "choices",
    "find_faces",
    "segment",
    "skin_mask",
]
