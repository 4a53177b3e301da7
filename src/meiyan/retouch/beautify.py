"""The main job: skin retouching after ABPN, every stage with its own strength, any image size.

The pipeline of the ABPN skin-retouching model (T. Lei et al., "ABPN: Adaptive Blend Pyramid
Network for Real-Time Local Retouching of Ultra High-Resolution Photo", CVPR 2022; ModelScope's
``skin-retouching`` pipeline) with classical predictors in its slots, each confined to skin:

1. faces are found (:func:`meiyan.face.analyze`, unless given) and each is cropped with a
   margin and reduced to a working resolution (:mod:`meiyan.retouch.crops`);
2. a skin mask is made for the crop by the ``skin`` slot's engine (``auto``: the best by
   ``bench/skin_iou.py``, today the U-Net, :mod:`meiyan.skin.unet_onnx`, from forehead to
   hairline, neck and ears), with the face's landmarks in the crop (nothing is detected
   again) cutting eyes, brows, lips and mouth out with margins;
3. blemishes are detected in the face and on the forehead (not the neck or the ears) and
   healed (:mod:`meiyan.retouch.blemish`), at working resolution
   to feed the next stages and at full resolution for the output;
4. smoothing (:func:`meiyan.retouch.smooth.smooth_float`) and optional high-pass detail
   reduction give an additive layer;
5. even tone (:mod:`meiyan.retouch.tone`) and whitening (:mod:`meiyan.retouch.whiten`) give
   soft-light layers (:mod:`meiyan.retouch.blend`), folded into one gain;
6. both layers, times the skin mask, are upsampled and applied to the full-resolution crop.

The whole pipeline is the ``classic`` engine of the ``retouch`` slot (:mod:`meiyan.engines`);
a learned engine stands beside it under another name and takes the same faces and settings.
Step 5 (from the skin around the spots found) and step 3 at full resolution run on a worker
thread while the main one heals the working image and smooths it.

All strengths 0 return the input unchanged, bit for bit. Without a face the image comes back
unchanged with a warning, unless ``skin="none"`` treats the whole frame as skin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace

import cv2
import numpy as np

from meiyan import engines
from meiyan._array import Mask, check_image, rgb3
from meiyan._resample import resize_area
from meiyan._threads import pool
from meiyan.errors import NoFaceWarning, RetouchWarning
from meiyan.face import DEFAULT_MIN_FACE, Face
from meiyan.face.person import analyze_with_person
from meiyan.face.regions import region_mask
from meiyan.face.window import Window, ramp, support
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
    face_crop,
    frame_crop,
    full_mask,
    paste,
    working_image,
)
from meiyan.retouch.face_skin import feature_mask, search_zone, spot_exclusion_mask
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth_float, working_scale
from meiyan.retouch.tone import even_tone_layer
from meiyan.retouch.whiten import whiten_layer

STRENGTHS = ("smooth", "tone", "blemish", "whiten", "detail")
"""The settings that are strengths of a stage: all 0 is the identity."""

SLOT = engines.slot("retouch", "bench/retouch.py")


@dataclass(frozen=True)
class BeautifySettings:
    """Settings of :func:`beautify`, shared by the Python API and the command line.

    Every strength is in [0, 1] and 0 switches its stage off; all of them 0 returns the input
    unchanged, bit for bit. The defaults are the ``natural`` preset (:data:`PRESETS`).
    """

    smooth: float = 0.9
    """Skin smoothing: the combined edge-preserving method (:func:`meiyan.smooth`)."""
    tone: float = 0.4
    """Even tone: redness, blotches and dark patches evened, shading kept."""
    blemish: float = 0.8
    """Blemish removal: spots detected and healed with real skin texture."""
    whiten: float = 0.2
    """Whitening: a hue-keeping brightening curve on skin."""
    detail: float = 0.0
    """High-pass detail reduction: dark lines and blotches lightened, fine texture kept."""
    texture: float = 0.4
    """Share of fine skin texture given back after smoothing."""
    filter: str = "guided"
    """Edge-preserving filter of the smoothing stage."""
    skin: str = "auto"
    """Skin segmenter run on each face crop with the face's landmarks (``meiyan.skin.choices()``;
    ``auto``: the best by ``bench/skin_iou.py`` of those registered for beautify), or
    ``"none"``: the whole frame is skin."""
    freckles: str = "keep"
    """What blemish removal does with freckles: ``keep``, ``reduce`` (half) or ``remove``."""
    moles: bool = False
    """Remove moles too (very dark spots), which are kept by default."""
    min_face: float = DEFAULT_MIN_FACE
    """Smallest face searched for, as a fraction of the image's long side (smaller is slower)."""
    engine: str = "auto"
    """Retouching engine (``SLOT.choices()``): ``classic``, or a learned one."""

    def __post_init__(self) -> None:
        for name in (*STRENGTHS, "texture", "min_face"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
        if not isinstance(self.moles, bool):
            raise TypeError(f"moles must be True or False, got {self.moles!r}")
        for name in ("filter", "skin", "freckles", "engine"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")
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
        from meiyan.skin import choices

        if self.skin != "none" and self.skin not in choices():
            raise ValueError(
                f"unknown skin method {self.skin!r}; choose one of {[*choices(), 'none']}"
            )
        if self.engine not in SLOT.choices():
            raise ValueError(
                f"unknown retouch engine {self.engine!r}; choose one of {SLOT.choices()}"
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
        smooth=1.0, tone=0.7, blemish=1.0, whiten=0.4, detail=1.0, texture=0.2, freckles="reduce"
    ),
}
"""Named starting points; ``natural`` is the default. On FASSEG's labelled skin ``natural``
keeps under three quarters of the fine-detail energy (sigma-2 high-pass of luminance) and
``strong`` under half of it, texture add-back on; hair keeps over 95%
(``bench/detail_energy.py``; ``strong``'s full detail reduction was chosen on the training
split)."""


@dataclass
class CropResult:
    """What was done in one crop, at working resolution: skin mask, spots found (with the share
    of each that was removed) and their heals."""

    crop: Window
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


_CROP_FADE = 0.08
"""Width (face sizes) over which a segmenter's mask fades out at a crop's inner edges."""
_SPOT_FILL = 0.04
"""Holes in a segmenter's mask inside the face oval up to about twice this (face sizes) across
are filled: a mole, a dark spot or a pimple is skin to be healed, whatever a network says."""


def _fill_spots(mask: Mask, landmarks: np.ndarray, size: float) -> Mask:
    """``mask`` with its small holes inside the face oval closed (a morphological closing,
    worked out at a quarter of the resolution: holes of that size are smooth at that scale)."""
    h, w = mask.shape
    f = 4 if min(h, w) >= 64 else 1
    small = resize_area(mask, (max(1, w // f), max(1, h // f)))
    r = max(1, round(_SPOT_FILL * size / f))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    closed = cv2.resize(cv2.morphologyEx(small, cv2.MORPH_CLOSE, disk), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    fill = np.maximum(closed - mask, 0.0) * region_mask(landmarks, "face_oval", (h, w))
    return mask + fill


def _crop_masks(
    work: np.ndarray, crop: Window, skin: str, person: Mask | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Working-resolution skin mask of a crop, and where blemishes are sought in it.

    ``person``: the person mask of the whole photo at any resolution, for a segmenter that
    uses one (worked out by the segmenter on the crop when ``None``)."""
    from meiyan.skin import SLOT as SKIN

    if skin == "none" or crop.face is None:
        ones = np.ones(work.shape[:2], np.float32)
        return ones, ones
    segmenter = SKIN.get(skin, job="beautify")
    if hasattr(segmenter, "in_crop"):  # the classic mask knows where spots may be sought
        masks = segmenter.in_crop(work, crop)
        return masks.skin, masks.search
    face = crop.work_face()
    shape, size = work.shape[:2], crop.face_size
    # Eyes, brows, lips and mouth, widened, with feathered edges: no step where retouched
    # skin meets the margins.
    features = feature_mask(face.landmarks, shape, size, soft=True)
    # A segmenter that knows crops gives the face's skin alone (no body skin around it).
    crop_mask = getattr(segmenter, "crop_mask", None)
    if crop_mask is None:
        m = segmenter(work, [face])
    elif person is not None and getattr(segmenter, "uses_person", False):
        m = crop_mask(work, face, person=crop.sample(person, crop.face.image_shape))
    else:
        m = crop_mask(work, face)
    m = _fill_spots(np.clip(m, 0.0, 1.0), face.landmarks, size) * (1.0 - features)
    # Faded to zero towards the crop's edges inside the photo: no seam where the crop ends.
    (h, w), width = crop.face.image_shape, _CROP_FADE * size
    m *= np.outer(ramp(shape[0], width, crop.y0 > 0, crop.y1 < h),
                  ramp(shape[1], width, crop.x0 > 0, crop.x1 < w))
    # Blemishes are sought in the face (its oval, a little beyond) and on the forehead, not on
    # the neck or the ears (their folds and hair are no blemishes; fewer false alarms).
    keep_out = np.maximum(features, spot_exclusion_mask(face.landmarks, shape, size))
    return m, m * (1.0 - keep_out) * search_zone(face.landmarks, shape, size)


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
    ref = resize_area(base, half)
    target = ref
    if s.tone > 0:
        m = resize_area(weights, half)
        layer = even_tone_layer(ref, m, size * half[0] / w)
        target = soft_light(target, scale_layer(layer, s.tone))
    if s.whiten > 0:
        target = soft_light(target, whiten_layer(target, s.whiten))
    gain = cv2.resize(gain_for(ref, target), (w, h), interpolation=cv2.INTER_LINEAR)
    return gain * rgb3(mask)


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
    return (smoothed - base) * rgb3(mask)


def _retouch_crop(
    out: np.ndarray, crop: Window, s: BeautifySettings, person: Mask | None = None
) -> CropResult:
    """Retouch one crop of ``out`` in place (``person``: see :func:`_crop_masks`).

    Once spots are found, the tone layer is predicted on a worker thread (from the skin around
    the spots, which are about to go), and so is the healing of the full-resolution crop, while
    the main thread heals the working image and smooths it.
    """
    work = working_image(out, crop)
    mask, search = _crop_masks(work, crop, s.skin, person)
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


class ClassicRetouch:
    """The ``classic`` retouching engine: every stage classical, each face in its own crop.

    A learned engine subclasses it and replaces :meth:`retouch_crop`; the per-face loop, the
    small-face rule and the warnings stay here.
    """

    def retouch_crop(
        self, out: np.ndarray, crop: Window, s: BeautifySettings, person: Mask | None = None
    ) -> CropResult:
        """Retouch one crop of ``out`` in place (``person``: the photo's person mask at any
        resolution, or ``None``)."""
        return _retouch_crop(out, crop, s, person)

    def __call__(
        self,
        out: np.ndarray,
        faces: list[Face] | None,
        s: BeautifySettings,
        person: Mask | None = None,
    ) -> BeautifyResult:
        """Retouch ``out`` (a copy of the photo, changed in place) with these faces
        (``person``: the photo's person mask at any resolution, when already worked out)."""
        result = BeautifyResult(out, faces=list(faces or []))
        if s.skin == "none":
            result.crops.append(self.retouch_crop(out, frame_crop(out.shape[:2]), s))
            return result
        if not result.faces:
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
                result.crops.append(self.retouch_crop(out, face_crop(face), fs, person))
        return result


SLOT.register(
    "classic",
    ClassicRetouch,
    score=6.7,  # PSNR gain at synthetic spots, dB (bench/retouch.py, README)
    description="classical predictors after ABPN's pipeline: blend layers, spot healing",
)


def _abpn() -> object:
    from meiyan.retouch.abpn.engine import AbpnRetouch

    return AbpnRetouch()


SLOT.register(
    "abpn",
    _abpn,
    models=("abpn",),
    score=4.5,  # PSNR gain at the same synthetic spots, dB (bench/retouch.py)
    jobs=("beautify",),
    description="ABPN blend layer (Lei et al. 2022) for blemishes and tone; classical whitening "
    "and smoothing on top",
)


def settings_of(
    settings: BeautifySettings | str | None, overrides: dict[str, object]
) -> BeautifySettings:
    """``settings`` (a :class:`BeautifySettings`, a preset name, or ``None`` for the default)
    with fields overridden; a one-line error naming what is wrong otherwise."""
    if settings is None:
        settings = BeautifySettings()
    elif isinstance(settings, str):
        settings = BeautifySettings.preset(settings)
    elif not isinstance(settings, BeautifySettings):
        raise TypeError(
            "settings must be a BeautifySettings or a preset name, got "
            f"{type(settings).__name__}; give strengths by keyword, e.g. smooth=0.7"
        )
    unknown = sorted(set(overrides) - {f.name for f in fields(BeautifySettings)})
    if unknown:
        raise TypeError(f"unknown beautify setting(s) {unknown}")
    return replace(settings, **overrides)


def _uses_person(skin: str) -> bool:
    """Whether beautify's skin engine ``skin`` limits its crop masks to the person mask."""
    from meiyan.skin import SLOT as SKIN

    segmenter = SKIN.get(skin, job="beautify")
    return getattr(segmenter, "uses_person", False) and hasattr(segmenter, "crop_mask")


def retouch(
    image: np.ndarray,
    settings: BeautifySettings | str | None = None,
    *,
    faces: list[Face] | None = None,
    **overrides: object,
) -> BeautifyResult:
    """:func:`beautify` with its by-products: faces, per-crop masks and heals, warnings."""
    image = check_image(image)
    s = settings_of(settings, overrides)
    if s.is_identity:
        return BeautifyResult(image.copy())
    engine = SLOT.get(s.engine, job="beautify")
    out = image.astype(np.float32) if image.dtype == np.float64 else image.copy()
    person = None
    if faces is None and s.skin != "none":
        # A skin segmenter that uses the person mask gets the whole photo's, made beside the
        # face pass, instead of one per crop.
        faces, person = analyze_with_person(out, min_face=s.min_face, person=_uses_person(s.skin))
    result = engine(out, faces, s, person)
    if image.dtype == np.float64:
        result.image = out.astype(np.float64)
    return result


def beautify(
    image: np.ndarray,
    settings: BeautifySettings | str | None = None,
    *,
    faces: list[Face] | None = None,
    **overrides: object,
) -> np.ndarray:
    """Retouch the skin of an RGB image (uint8, or float32/float64 in [0, 1]); same shape and
    dtype back.

    ``settings`` (default :class:`BeautifySettings()`, the ``natural`` preset; or a preset
    name) with any field overridden by keyword, e.g. ``beautify(img, smooth=0.7, whiten=0)``;
    ``faces`` from :func:`meiyan.analyze` (found here when ``None``). A photo without a face
    comes back unchanged with a :class:`~meiyan.errors.NoFaceWarning`, small faces give a
    :class:`~meiyan.errors.RetouchWarning`; :func:`retouch` returns them with the masks instead.
    """
    result = retouch(image, settings, faces=faces, **overrides)
    faceless = not result.faces and not result.crops
    for message in result.warnings:
        warnings.warn(message, NoFaceWarning if faceless else RetouchWarning, stacklevel=2)
    return result.image


__all__ = [
    "FRECKLE_MODES",
    "PRESETS",
    "STRENGTHS",
    "BeautifyResult",
    "BeautifySettings",
    "ClassicRetouch",
    "CropResult",
    "RetouchWarning",
    "beautify",
    "retouch",
    "settings_of",
]
