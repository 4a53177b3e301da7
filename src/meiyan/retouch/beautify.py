"""The main job: skin retouching after ABPN, every stage with its own strength, any image size.

The pipeline of the ABPN skin-retouching model (T. Lei et al., "ABPN: Adaptive Blend Pyramid
Network for Real-Time Local Retouching of Ultra High-Resolution Photo", CVPR 2022; ModelScope's
``skin-retouching`` pipeline) with classical predictors in its slots, each confined to skin:

1. faces are found (:func:`meiyan.retouch.crops.find_faces`) and each is cropped with a margin
   and reduced to a working resolution (:mod:`meiyan.retouch.crops`);
2. a skin mask is made for the crop (:mod:`meiyan.retouch.face_skin`, or a named segmenter);
3. blemishes are detected and healed (:mod:`meiyan.retouch.blemish`), at working resolution
   to feed the next stages and at full resolution for the output;
4. smoothing (:func:`meiyan.retouch.smooth.smooth_float`) and optional high-pass detail
   reduction give an additive layer;
5. even tone (:mod:`meiyan.retouch.tone`) and whitening (:mod:`meiyan.retouch.whiten`) give
   soft-light layers (:mod:`meiyan.retouch.blend`), folded into one gain;
6. both layers, times the skin mask, are upsampled and applied to the full-resolution crop.

A learned predictor replaces a classical one by producing the same thing: a soft-light layer
from the working image and its mask (``even_tone_layer``, ``whiten_layer``), or spots to heal
(``detect_spots``). Step 5 (from the skin around the spots found) and step 3 at full
resolution run on a worker thread while the main one heals the working image and smooths it.

All strengths 0 return the input unchanged, bit for bit. Without a face the image comes back
unchanged with a warning, unless a skin segmenter is named (then only smoothing runs, on the
whole frame, where that segmenter finds skin) or ``skin="none"`` treats the frame as skin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb
from meiyan._threads import pool
from meiyan.face import Face
from meiyan.filters.highpass import highpass_reduce
from meiyan.retouch.blemish import (
    FRECKLE_MODES,
    Heal,
    Spot,
    apply_heals,
    detect_spots,
    heal_mask,
    hole_map,
    plan_heals,
    removal_strength,
)
from meiyan.retouch.blend import gain_for, scale_layer, soft_light
from meiyan.retouch.crops import (
    SMALL_FACE,
    Crop,
    face_crop,
    find_faces,
    frame_crop,
    full_mask,
    paste,
    support,
    working_image,
)
from meiyan.retouch.face_skin import face_skin, feature_mask, spot_exclusion_mask
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth_float, working_scale
from meiyan.retouch.tone import even_tone_layer
from meiyan.retouch.whiten import whiten_layer

STRENGTHS = ("smooth", "tone", "blemish", "whiten", "detail")
"""The settings that are strengths of a stage: all 0 is the identity."""


class RetouchWarning(UserWarning):
    """Something about an image limited its retouching (no face, a small face)."""


@dataclass(frozen=True)
class BeautifySettings:
    """Settings of :func:`beautify`, shared by the Python API and the command line.

    Every strength is in [0, 1] and 0 switches its stage off; all of them 0 returns the input
    unchanged, bit for bit. The defaults are the ``natural`` preset (:data:`PRESETS`).
    """

    smooth: float = 0.5
    """Skin smoothing: the combined edge-preserving method (:func:`meiyan.smooth`)."""
    tone: float = 0.4
    """Even tone: redness, blotches and dark patches evened, shading kept."""
    blemish: float = 0.8
    """Blemish removal: spots detected and healed with real skin texture."""
    whiten: float = 0.2
    """Whitening: a hue-keeping brightening curve on skin."""
    detail: float = 0.0
    """High-pass detail reduction: dark lines and blotches lightened, fine texture kept."""
    texture: float = 0.5
    """Share of fine skin texture given back after smoothing."""
    filter: str = "guided"
    """Edge-preserving filter of the smoothing stage."""
    skin: str = "auto"
    """``"auto"``: each face's landmark mask refined by its own skin colour; a registered
    segmenter name (``meiyan.skin.registry.available()``) run on each face crop; ``"none"``:
    the whole frame is skin."""
    freckles: str = "keep"
    """What blemish removal does with freckles: ``keep``, ``reduce`` (half) or ``remove``."""
    moles: bool = False
    """Remove moles too (very dark spots), which are kept by default."""
    min_face: float = 0.08
    """Smallest face searched for, as a fraction of the image's long side (smaller is slower)."""

    def __post_init__(self) -> None:
        for name in (*STRENGTHS, "texture"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.filter not in FILTER_SETTINGS:
            raise ValueError(
                f"unknown filter {self.filter!r}; choose one of {sorted(FILTER_SETTINGS)}"
            )
        if self.freckles not in FRECKLE_MODES:
            raise ValueError(f"freckles must be one of {FRECKLE_MODES}, got {self.freckles!r}")
        if not 0 < self.min_face <= 1:
            raise ValueError(f"min_face must be in (0, 1], got {self.min_face}")
        from meiyan.skin import registry

        if self.skin != "none" and self.skin not in registry.available():
            raise ValueError(
                f"unknown skin method {self.skin!r}; choose one of "
                f"{[*registry.available(), 'none']}"
            )

    @classmethod
    def preset(cls, name: str, **overrides: object) -> BeautifySettings:
        """The preset ``name`` (``natural`` or ``strong``) with fields overridden by keyword."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    @property
    def is_identity(self) -> bool:
        """Whether every stage is switched off."""
        return all(getattr(self, name) == 0 for name in STRENGTHS)

    def lighter(self) -> BeautifySettings:
        """The settings for a face under :data:`SMALL_FACE` pixels: no blemish removal or
        detail reduction (spots are not resolved), half smoothing and tone."""
        return replace(self, blemish=0.0, detail=0.0, smooth=self.smooth / 2, tone=self.tone / 2)


PRESETS: dict[str, BeautifySettings] = {
    "natural": BeautifySettings(),
    "strong": BeautifySettings(
        smooth=0.8, tone=0.7, blemish=1.0, whiten=0.4, detail=0.3, texture=0.35, freckles="reduce"
    ),
}
"""Named starting points; ``natural`` is the default."""


@dataclass
class CropResult:
    """What was done in one crop, at working resolution: skin mask, spots found (with the share
    of each that was removed) and their heals."""

    crop: Crop
    mask: np.ndarray
    spots: list[Spot]
    amounts: list[float]
    heals: list[Heal]
    blemish: float


@dataclass
class BeautifyResult:
    """The retouched image (same shape and dtype as the input) and what was found on the way."""

    image: np.ndarray
    faces: list[Face] = field(default_factory=list)
    crops: list[CropResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def spots(self) -> list[tuple[Spot, float]]:
        """Every spot found, in image pixels, with the share removed (0: kept, e.g. a freckle)."""
        out = []
        for rec in self.crops:
            fx, fy = rec.crop.scale
            x0, y0 = rec.crop.box[:2]
            for spot, amount in zip(rec.spots, rec.amounts, strict=True):
                moved = replace(
                    spot,
                    x=x0 + (spot.x + 0.5) * fx - 0.5,
                    y=y0 + (spot.y + 0.5) * fy - 0.5,
                    radius=spot.radius * (fx * fy) ** 0.5,
                )
                out.append((moved, amount * rec.blemish))
        return out

    def skin_mask(self) -> Mask:
        """The skin mask the edits went through, ``(H, W)`` float32 in [0, 1], full size."""
        out = np.zeros(self.image.shape[:2], np.float32)
        for rec in self.crops:
            x0, y0, x1, y1 = rec.crop.box
            np.maximum(out[y0:y1, x0:x1], full_mask(rec.mask, rec.crop), out=out[y0:y1, x0:x1])
        return out

    def blemish_mask(self) -> Mask:
        """Where blemishes were healed (fill opacity), ``(H, W)`` float32 in [0, 1]."""
        out = np.zeros(self.image.shape[:2], np.float32)
        for rec in self.crops:
            x0, y0, x1, y1 = rec.crop.box
            m = heal_mask(rec.heals, (y1 - y0, x1 - x0), rec.crop.scale)
            m *= full_mask(rec.mask, rec.crop) * np.float32(rec.blemish)
            np.maximum(out[y0:y1, x0:x1], m, out=out[y0:y1, x0:x1])
        return out


def _crop_masks(work: np.ndarray, crop: Crop, skin: str) -> tuple[np.ndarray, np.ndarray]:
    """Working-resolution skin mask of a crop, and where blemishes are sought in it."""
    from meiyan.skin import skin_mask

    if skin == "none":
        ones = np.ones(work.shape[:2], np.float32)
        return ones, ones
    if crop.face is None:
        m = skin_mask(work, skin)
        return m, m
    lm = crop.to_work(crop.face.landmarks)
    size = crop.face_size
    if skin == "auto":
        masks = face_skin(work, lm, size)
        return masks.skin, masks.search
    m = skin_mask(work, skin)
    shape = work.shape[:2]
    keep_out = np.maximum(feature_mask(lm, shape, size), spot_exclusion_mask(lm, shape, size))
    return m, m * (1.0 - keep_out)


def _tone_gain(
    base: np.ndarray, mask: np.ndarray, weights: np.ndarray, size: float, s: BeautifySettings
):
    """The soft-light gain of even tone then whitening, times the skin ``mask``.

    Both layers are smooth, so they are predicted at half the working resolution (which also
    low-passes the reference) and folded into the one gain that takes the reference to the
    toned and whitened target; that gain is brought back to the working resolution. Even tone
    reads the skin through ``weights`` (the mask less the spots about to be healed), so that
    it does not answer spots that will be gone.
    """
    h, w = mask.shape
    half = (max(1, w // 2), max(1, h // 2))
    ref = cv2.resize(base, half, interpolation=cv2.INTER_AREA)
    target = ref
    if s.tone > 0:
        m = cv2.resize(weights, half, interpolation=cv2.INTER_AREA)
        layer = even_tone_layer(ref, m, size * half[0] / w)
        target = soft_light(target, scale_layer(layer, s.tone))
    if s.whiten > 0:
        target = soft_light(target, whiten_layer(target, s.whiten))
    gain = cv2.resize(gain_for(ref, target), (w, h), interpolation=cv2.INTER_LINEAR)
    return gain * mask[..., None]


def _smoothing(base: np.ndarray, mask: np.ndarray, scale: float, s: BeautifySettings):
    """The additive layer of detail reduction and smoothing, times the skin mask."""
    smoothed = base
    if s.detail > 0:
        smoothed = highpass_reduce(
            smoothed, sigma=8.0 * scale, texture_sigma=max(0.5, scale), strength=s.detail
        )
    if s.smooth > 0:
        smoothed = smooth_float(
            np.ascontiguousarray(smoothed),
            None,
            filter=s.filter,
            strength=s.smooth,
            texture=s.texture,
            scale=scale,
        )
    return (smoothed - base) * mask[..., None]


def _retouch_crop(out: np.ndarray, crop: Crop, s: BeautifySettings) -> CropResult:
    """Retouch one crop of ``out`` in place.

    Once spots are found, the tone layer is predicted on a worker thread (from the skin around
    the spots, which are about to go), and so is the healing of the full-resolution crop, while
    the main thread heals the working image and smooths it.
    """
    work = working_image(out, crop)
    mask, search = _crop_masks(work, crop, s.skin)
    size = crop.face_size
    scale = size / 512.0 if crop.face is not None else working_scale(work.shape)
    x0, y0, x1, y1 = crop.box
    spots: list[Spot] = []
    amounts: list[float] = []
    if s.blemish > 0:
        spots = detect_spots(work, search, size)
        amounts = [removal_strength(p, s.freckles, s.moles) for p in spots]
    # The layers need only span the skin, with room for the filters around it.
    window = support(mask, max(16, round(0.05 * size)))
    gain = None
    if window is not None and (s.tone > 0 or s.whiten > 0):
        wx0, wy0, wx1, wy1 = window
        removed = [p for p, a in zip(spots, amounts, strict=True) if a > 0]
        tone_mask = mask * hole_map(mask.shape, removed) if removed else mask
        gain = pool().submit(
            _tone_gain,
            work[wy0:wy1, wx0:wx1].copy(),
            mask[wy0:wy1, wx0:wx1],
            tone_mask[wy0:wy1, wx0:wx1],
            size,
            s,
        )
    heals = plan_heals(work, mask, spots, amounts) if spots else []
    full = None
    if heals:
        apply_heals(work, heals, strength=s.blemish, mask=mask)
        full = pool().submit(
            apply_heals, out[y0:y1, x0:x1], heals, strength=s.blemish, mask=mask, scale=crop.scale
        )
    if window is not None:
        wx0, wy0, wx1, wy1 = window
        base, skin = work[wy0:wy1, wx0:wx1], mask[wy0:wy1, wx0:wx1]
        delta = _smoothing(base, skin, scale, s) if s.smooth > 0 or s.detail > 0 else None
        if full is not None:
            full.result()
        paste(out, crop, window, skin, delta, gain.result() if gain is not None else None)
    elif full is not None:
        full.result()
    return CropResult(crop, mask, spots, amounts, heals, s.blemish)


def retouch(
    image: np.ndarray, settings: BeautifySettings | None = None, **overrides: object
) -> BeautifyResult:
    """:func:`beautify` with its by-products: faces, per-crop masks and heals, warnings."""
    check_rgb(image)
    s = replace(settings or BeautifySettings(), **overrides)
    if s.is_identity:
        return BeautifyResult(image.copy())
    out = image.astype(np.float32) if image.dtype == np.float64 else image.copy()
    result = BeautifyResult(out)
    if s.skin == "none":
        result.crops.append(_retouch_crop(out, frame_crop(out.shape[:2]), s))
    else:
        result.faces = find_faces(out, s.min_face)
        if not result.faces:
            if s.skin == "auto":
                result.warnings.append(
                    "no face found: returned unchanged (name a skin segmenter, e.g. "
                    "skin='color', to smooth by skin colour alone)"
                )
            elif s.smooth > 0:
                result.warnings.append(
                    f"no face found: only smoothing applied, where skin={s.skin!r} finds skin"
                )
                only_smooth = replace(s, tone=0.0, blemish=0.0, whiten=0.0, detail=0.0)
                result.crops.append(_retouch_crop(out, frame_crop(out.shape[:2]), only_smooth))
            else:
                result.warnings.append("no face found: returned unchanged")
        for face in result.faces:
            fs = s
            if face.size < SMALL_FACE:
                x, y = (round(v) for v in face.bbox[:2])
                result.warnings.append(
                    f"face at ({x}, {y}) is {face.size:.0f} px, under {SMALL_FACE}: lighter "
                    "retouching (no blemish removal, half smoothing and tone)"
                )
                fs = s.lighter()
            if not fs.is_identity:
                result.crops.append(_retouch_crop(out, face_crop(face, out.shape[:2]), fs))
    if image.dtype == np.float64:
        result.image = out.astype(np.float64)
    return result


def beautify(
    image: np.ndarray, settings: BeautifySettings | None = None, **overrides: object
) -> np.ndarray:
    """Retouch the skin of an RGB image (uint8 or float32 in [0, 1]); same shape and dtype back.

    ``settings`` (default :class:`BeautifySettings()`, the ``natural`` preset) with any field
    overridden by keyword, e.g. ``beautify(img, smooth=0.7, whiten=0)``. Limits met on the way
    (no face, small faces) are reported as :class:`RetouchWarning`; :func:`retouch` returns
    them with the masks instead.
    """
    result = retouch(image, settings, **overrides)
    for message in result.warnings:
        warnings.warn(message, RetouchWarning, stacklevel=2)
    return result.image


__all__ = [
    "FRECKLE_MODES",
    "PRESETS",
    "STRENGTHS",
    "BeautifyResult",
    "BeautifySettings",
    "CropResult",
    "RetouchWarning",
    "beautify",
    "retouch",
]
