"""Skin smoothing (磨皮): an edge-preserving filter blended into skin through a detail map."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from meiyan import filters
from meiyan._array import (
    Float32Image,
    Mask,
    check_float_rgb,
    check_image,
    check_mask,
    check_rgb,
    from_float32,
    rgb3,
    to_float32,
)
from meiyan._threads import pool
from meiyan.errors import NoFaceWarning
from meiyan.face.window import Window, support, upsample_window
from meiyan.filters.guided import FastGuidedRows
from meiyan.filters.highpass import luma

if TYPE_CHECKING:
    from meiyan.face import Face

FULL_RESOLUTION_UP_TO = 2.5
"""Working scale (short side / 512) up to which :func:`smooth` filters at full resolution;
larger photos are smoothed at this scale and the layer upsampled."""
_STRIP = 64  # rows per band of the full-resolution blend
_HALO = 8  # rows of context for the blurs in a strip

# Each filter with parameters for a given working scale (1.0 = a 512-pixel face or frame).
FILTER_SETTINGS: dict[str, Callable[[float], tuple[Callable, dict]]] = {
    "guided": lambda s: (
        filters.guided,
        {"radius": max(2, round(8 * s)), "eps": 0.004, "subsample": max(1, round(2 * s))},
    ),
    "bilateral": lambda s: (
        filters.bilateral,
        {"radius": max(2, round(5 * s)), "sigma_color": 0.08},
    ),
    "surface_blur": lambda s: (
        filters.surface_blur,
        {"radius": max(2, round(5 * s)), "threshold": 0.08},
    ),
    "local_mean": lambda s: (
        filters.local_mean,
        {"radius": max(2, round(6 * s)), "noise_var": 0.002},
    ),
    "wls": lambda s: (filters.wls, {"lam": 0.5 * s * s}),
    "smart_blur": lambda s: (
        filters.smart_blur,
        {"radius": max(2, round(5 * s)), "threshold": 0.08},
    ),
}


def working_scale(shape: tuple[int, ...]) -> float:
    """Scale of filter radii for an image: 1.0 for a 512-pixel short side."""
    return min(shape[0], shape[1]) / 512.0


def _check_settings(filter: str, strength: float, texture: float) -> None:
    for name, v in (("strength", strength), ("texture", texture)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"{name} must be a number in [0, 1], got {v!r}")
    if filter not in FILTER_SETTINGS:
        raise ValueError(f"unknown filter {filter!r}; choose one of {sorted(FILTER_SETTINGS)}")
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if not 0 <= texture <= 1:
        raise ValueError(f"texture must be in [0, 1], got {texture}")


def _filter_rows(
    image: np.ndarray, filter: str, scale: float
) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """``rows(p, y0, x0)``: the filtered pixels from row ``y0`` and column ``x0`` on, of the
    size of ``p``, given those input pixels ``p``."""
    fn, params = FILTER_SETTINGS[filter](scale)
    if fn is filters.guided:
        # The default filter streams: its coefficients live at low resolution.
        return FastGuidedRows(image, **params).rows
    filtered = fn(to_float32(image), **params)
    return lambda p, y0, x0: filtered[y0 : y0 + p.shape[0], x0 : x0 + p.shape[1]]


def _band_columns(mask: Mask | None, width: int) -> tuple[int, int] | None:
    """Columns ``(x0, x1)`` a band of rows with this ``mask`` (``None``: all skin) must be
    worked out over: its skin grown by :data:`_HALO`, the reach of the band's blurs (pixels
    farther out have a zero mask and come back unchanged); ``None`` without skin."""
    if mask is None:
        return 0, width
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    return max(0, int(cols[0]) - _HALO), min(width, int(cols[-1]) + 1 + _HALO)


def _context(filter: str, scale: float) -> int:
    """Pixels of context the method needs around what it changes: the filter's support (three
    radii, or a fixed reach for the global WLS) and the blurs of the bands."""
    _, params = FILTER_SETTINGS[filter](scale)
    return round(3 * params.get("radius", 16 * scale)) + _HALO + 4


def _smooth(
    image: np.ndarray,
    mask: Mask | None,
    *,
    filter: str,
    strength: float,
    texture: float,
    scale: float | None,
    detail_threshold: float,
) -> np.ndarray:
    """The combined method on an RGB uint8 or float32 image; the result has its dtype.
    ``mask``: float32 in [0, 1] of the image's size (validated by the caller, no copy here).

    The full-resolution work runs in bands of rows so that temporaries stay in cache: at 1080p a
    fresh float32 frame costs as much to allocate as the arithmetic done in it; each band is
    worked out only over the columns its skin needs.
    """
    _check_settings(filter, strength, texture)
    if image.dtype == np.float32:
        image = check_float_rgb(image)
    else:
        check_rgb(image)
    if scale is None:
        scale = working_scale(image.shape)
    if mask is not None:
        box = support(mask, _context(filter, scale))
        if box is None:
            return image.copy()
        x0, y0, x1, y1 = box
        if (y1 - y0) * (x1 - x0) < 0.8 * mask.size:
            # Skin covers part of the frame (faces): filter only around it, at full-frame radii.
            res = image.copy()
            res[y0:y1, x0:x1] = _smooth(
                np.ascontiguousarray(image[y0:y1, x0:x1]),
                mask[y0:y1, x0:x1],
                filter=filter,
                strength=strength,
                texture=texture,
                scale=scale,
                detail_threshold=detail_threshold,
            )
            return res
    rows = _filter_rows(image, filter, scale)
    h, w = image.shape[:2]
    res = np.empty_like(image)

    def band(y0: int) -> None:
        y1 = min(h, y0 + _STRIP)
        span = _band_columns(None if mask is None else mask[y0:y1], w)
        if span is None:
            res[y0:y1] = image[y0:y1]
            return
        x0, x1 = span
        if x1 - x0 < w:
            res[y0:y1] = image[y0:y1]
        a0, a1 = max(0, y0 - _HALO), min(h, y1 + _HALO)
        top, n = y0 - a0, y1 - y0
        p = to_float32(image[a0:a1, x0:x1])
        d = rows(p, a0, x0) - p
        if texture > 0:
            # d - texture * (d - fine) == (1 - texture) * d + texture * fine
            d = cv2.addWeighted(d, 1.0 - texture, cv2.GaussianBlur(d, (5, 5), 1.0), texture, 0.0)
        alpha = luma(d)
        np.abs(alpha, out=alpha)
        alpha = cv2.GaussianBlur(alpha, (13, 13), 2.0)[top : top + n]
        alpha *= np.float32(0.7 / detail_threshold)
        np.minimum(alpha, 0.7, out=alpha)
        alpha += np.float32(0.3)
        alpha *= np.float32(strength)
        if mask is not None:
            alpha *= mask[y0:y1, x0:x1]
        out = d[top : top + n]
        out *= rgb3(alpha)
        out += p[top : top + n]
        res[y0:y1, x0:x1] = from_float32(out, image.dtype)

    # Bands are independent and OpenCV and NumPy release the GIL, so threads share the work.
    list(pool().map(band, range(0, h, _STRIP)))
    return res


def smooth_float(
    x: Float32Image,
    mask: Mask | None = None,
    *,
    filter: str = "guided",
    strength: float = 0.5,
    texture: float = 0.5,
    scale: float | None = None,
    detail_threshold: float = 0.03,
) -> Float32Image:
    """The combined smoothing method on float32 RGB in [0, 1], confined to ``mask``.

    1. ``S = EPF(x)``, the chosen edge-preserving filter; ``D = S - x`` is what it removes.
    2. Texture add-back: the part of ``D`` finer than one pixel is skin grain and pores, so
       ``texture`` of it is given back (``D_t = D - texture * (D - G_1 * D)``); skin never turns
       to plastic, and at ``texture=0`` the output is the filter's.
    3. Detail map: the high-pass magnitude ``|G_2 * luma(D_t)|`` scaled by ``detail_threshold``
       is the alpha between original and filtered image: blemishes and blotches (strong
       mid-frequency detail) take the smooth layer fully, flat skin only by a floor of 0.3, so
       its texture stays.
    4. ``out = x + strength * mask * alpha * D_t``.

    Filter radii scale with ``scale`` (default: the short side over 512 pixels).
    """
    return _smooth(
        x,
        None if mask is None else check_mask(mask, np.shape(x)[:2]),
        filter=filter,
        strength=strength,
        texture=texture,
        scale=scale,
        detail_threshold=detail_threshold,
    )


def smooth(
    image: np.ndarray,
    *,
    filter: str = "guided",
    strength: float = 0.5,
    skin: str = "auto",
    texture: float = 0.5,
    faces: Sequence[Face] | None = None,
) -> np.ndarray:
    """Smooth the skin of an RGB image (uint8, or float32/float64 in [0, 1]); same shape and
    dtype back.

    ``filter`` names one of the edge-preserving filters in :mod:`meiyan.filters`; ``strength``
    in [0, 1] (0 returns the input unchanged); ``skin`` names a skin segmenter
    (``meiyan.skin.choices()``; ``auto``: the best within this job's budget) or ``"none"`` to
    smooth the whole frame; ``texture`` in [0, 1] is the share of fine texture given back;
    ``faces`` from :func:`meiyan.analyze` (found here when a face-based segmenter needs them).
    A photo without a face comes back unchanged with a
    :class:`~meiyan.errors.NoFaceWarning`.
    """
    from meiyan.skin import SLOT as SKIN
    from meiyan.skin import find_faces, segment

    image = check_image(image)
    _check_settings(filter, strength, texture)
    if strength == 0:
        return image.copy()
    mask = None
    reduced = working_scale(image.shape) > FULL_RESOLUTION_UP_TO
    if skin != "none":
        segmenter = SKIN.get(skin, job="smooth")
        extra: dict[str, np.ndarray] = {}
        if segmenter.needs_faces:
            if faces is None:
                faces, extra = find_faces(segmenter, image)
            if not faces:
                warnings.warn("no face found: returned unchanged", NoFaceWarning, stacklevel=2)
                return image.copy()
        mask = segment(segmenter, image, faces or (), extra, coarse=reduced)
    work = image.astype(np.float32) if image.dtype == np.float64 else image
    settings = {"filter": filter, "strength": strength, "texture": texture}
    if mask is not None and reduced:
        out = _smooth_reduced(work, mask, **settings)
    else:
        out = _smooth(work, mask, scale=None, detail_threshold=0.03, **settings)
    return out.astype(np.float64) if image.dtype == np.float64 else out


def _smooth_reduced(image: np.ndarray, mask: Mask, **settings: object) -> np.ndarray:
    """Smoothing of a large photo within ``mask``: the smoothing layer is worked out over the
    mask's box at :data:`FULL_RESOLUTION_UP_TO` and added, upsampled, to the full-resolution
    pixels, which keep their own fine texture (as :func:`meiyan.beautify` does). ``mask`` may
    be smaller than the photo (same aspect: a segmenter's coarse mask); it is then sampled
    bilinearly at the working pixels, as enlarging it and reducing it again would give."""
    from meiyan.retouch.crops import paste

    scale = working_scale(image.shape)
    (h, w), (mh, mw) = image.shape[:2], mask.shape
    sx, sy = mw / w, mh / h  # mask pixels per photo pixel
    pad = _context(str(settings["filter"]), scale)
    full = (mh, mw) == (h, w)
    # A coarse mask's bilinear enlargement reaches one of its pixels further.
    box = support(mask, pad if full else math.ceil(pad * max(sx, sy)) + 1)
    if box is None:
        return image.copy()
    x0, y0, x1, y1 = box
    if not full:
        x0, y0 = math.floor(x0 / sx), math.floor(y0 / sy)
        x1, y1 = min(w, math.ceil(x1 / sx)), min(h, math.ceil(y1 / sy))
    win = Window(x0, y0, x1, y1).reduced(scale / FULL_RESOLUTION_UP_TO)
    work = to_float32(win.crop(image))
    if full:
        m = np.ascontiguousarray(win.crop(mask))
    else:
        fx, fy = win.scale
        m = upsample_window(mask, (1 / (sx * fx), 1 / (sy * fy)), (x0 / fx, y0 / fy),
                            win.work_size)
    # Area averages of [0, 1] may overshoot by rounding: the filter gets them clipped.
    clipped = np.clip(m, 0.0, 1.0)
    layer = _smooth(work, clipped, scale=FULL_RESOLUTION_UP_TO, detail_threshold=0.03, **settings)
    layer -= work
    out = image.copy()
    paste(out, win, (0, 0, *win.work_size), m, layer, None)
    return out
