"""Skin mask of one face crop from its landmarks, refined by the face's own skin colour.

The face-mesh oval less the features (eyes, eyebrows, lips, mouth; dilated so that lashes,
brow hairs and lip edges stay out) is certain skin. A Gaussian colour model in (Cr, Cb) is
fitted to that area of this very face; deriving the skin model from the detected face of each
photo follows M. Yogarajah, J. Condell, K. Curran, A. Cheddad and P. McKevitt, "A dynamic
threshold approach for skin segmentation in color images", ICIP 2010. It then decides pixel by
pixel, loosely inside the oval (hair, which is less red than skin, is dropped; a red blemish is
skin however red) and strictly outside it, where neck and ears are taken in below the eyes and
within a distance that fades to zero before the crop's edge. Pixels much darker than the face
(hair, deep shadow), much brighter (a wall behind the neck) or much busier (hair strands,
clutter) are left out. The outer edge is pulled in before it is feathered, so that its soft tail
lies on skin, not on the hair or background next to it. The landmarks are already known, so no
second face detection is needed, and faces over 200 pixels are masked at half resolution.

On the FASSEG test photos (``bench/retouch.py``) the default retouching through this mask
leaves what the labels call non-skin (hair, eyes, lips, background) at 46 dB PSNR on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask
from meiyan._resample import resize_area
from meiyan.face.regions import region_mask

# Fractions of the face size.
_FEATURE_MARGINS = {  # dilation of the features, so that lashes, brow hairs and lip edges stay out
    ("eyes", "eyebrows"): 0.022,
    ("upper_lip", "lower_lip", "inner_mouth"): 0.008,
}
_OUTSIDE_REACH = 0.3  # how far beyond the oval (neck, ears) skin is taken in
_SEARCH_REACH = 0.08  # ... and blemishes sought (the face, its edge; not the neck)
_FEATHER = 0.006  # Gaussian sigma of the final mask edge
_DARK_BLUR = 0.015  # inside the oval darkness is judged at this scale: a dark spot is skin
_INSET = 1.0  # the edge is moved this many sigmas inwards, so that its tail stays on skin
# Mahalanobis distances (in the face skin's own chroma spread) where the colour likelihood falls
# from 1 to 0, loosely inside the face oval and strictly outside it.
_INSIDE = (3.5, 6.0)
_OUTSIDE = (2.0, 3.5)
# Luminance over the face's mean where the likelihood rises from 0 to 1: hair and deep shadow
# are darker than skin whatever their chroma.
_DARK_INSIDE = (0.35, 0.55)
_DARK_OUTSIDE = (0.5, 0.7)
_BRIGHT_OUTSIDE = (1.25, 1.45)  # ... and a bright wall behind the neck is lighter
_TEXTURE_RADIUS = 0.008
_BUSY = (1.5, 3.0)  # local contrast, in multiples of the face skin's 90th percentile
_RIGHT_EYE = (33, 133)  # MediaPipe face-mesh eye corners and the inner upper lip
_LEFT_EYE = (362, 263)
_MOUTH = 13
_MIN_CHROMA_STD = 0.008  # floor of the chroma spread (units of [0, 1] Cr/Cb)
_MIN_SAMPLES = 50
_HALF_FROM = 200  # faces this large (pixels) are masked at half resolution
# Landmarks around the lower nose (alae, nostrils, columella): dark holes and creases that no
# blemish detector should heal. MediaPipe face-mesh indices.
_LOWER_NOSE = (45, 275, 115, 344, 64, 294, 98, 327, 97, 326, 2)


def _ramp(d: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """1 below ``lo``, 0 above ``hi``, linear between."""
    t = (np.float32(hi) - d) * np.float32(1.0 / (hi - lo))
    np.maximum(t, 0.0, out=t)
    return np.minimum(t, 1.0, out=t)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def feature_mask(
    landmarks: np.ndarray, shape: tuple[int, int], face_size: float, *, soft: bool = False
) -> Mask:
    """Eyes, eyebrows, lips and mouth, dilated by their margins: ``(H, W)`` in [0, 1].

    ``soft``: each margin's outer edge feathered (Gaussian, the skin mask's sigma or half the
    margin, whichever is smaller), so that a mask cut by it has no step there; the feature
    itself stays at least 0.97.
    """
    out = np.zeros(shape, np.uint8)
    for names, margin in _FEATURE_MARGINS.items():
        m = _to_uint8(region_mask(landmarks, list(names), shape))
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if rows.size == 0:
            continue
        k = max(1, round(margin * face_size))
        sigma = min(feather_sigma(face_size), 0.5 * k) if soft else 0.0
        pad = k + math.ceil(3 * sigma)
        y0, y1 = max(0, rows[0] - pad), min(shape[0], rows[-1] + pad + 1)
        x0, x1 = max(0, cols[0] - pad), min(shape[1], cols[-1] + pad + 1)
        window = cv2.dilate(m[y0:y1, x0:x1], _disk(k))
        if soft:
            window = cv2.GaussianBlur(window, (0, 0), sigma)
        np.maximum(out[y0:y1, x0:x1], window, out=out[y0:y1, x0:x1])
    return out.astype(np.float32) * np.float32(1.0 / 255.0)


def _to_uint8(m: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(m, alpha=255.0)


def spot_exclusion_mask(landmarks: np.ndarray, shape: tuple[int, int], face_size: float) -> Mask:
    """The lower nose (nostrils, alae, their creases), dilated: where spots are not sought."""
    out = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(landmarks[list(_LOWER_NOSE)]).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 1)
    out = cv2.dilate(out, _disk(max(1, round(0.01 * face_size))))
    return out.astype(np.float32)


def _rise(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, linear between."""
    return 1.0 - _ramp(x, lo, hi)


def _below_eyes(landmarks: np.ndarray, shape: tuple[int, int], face_size: float) -> np.ndarray:
    """Soft half-plane below the line through the eyes (towards the mouth): neck and ears
    are there, hair and background above the forehead are not."""
    lm = np.asarray(landmarks, np.float64)
    right, left = lm[list(_RIGHT_EYE)].mean(axis=0), lm[list(_LEFT_EYE)].mean(axis=0)
    axis = left - right
    normal = np.array([-axis[1], axis[0]]) / max(float(np.hypot(*axis)), 1e-6)
    centre = (left + right) / 2
    if (lm[_MOUTH] - centre) @ normal < 0:
        normal = -normal
    h, w = shape
    v = (np.arange(w, dtype=np.float32)[None, :] - centre[0]) * np.float32(normal[0])
    v = v + (np.arange(h, dtype=np.float32)[:, None] - centre[1]) * np.float32(normal[1])
    return _rise(v, -0.05 * face_size, 0.05 * face_size)


def search_zone(landmarks: np.ndarray, shape: tuple[int, int], face_size: float) -> Mask:
    """Where blemishes are sought around a face, ``(H, W)`` float32 0 or 1: the face oval
    widened by ``_SEARCH_REACH`` and the forehead above the eyes (up to the hairline, which the
    skin mask sets); not the neck or the ears. Worked out at a quarter of the resolution."""
    h, w = shape
    f = 4 if min(h, w) >= 64 else 1
    size = (max(1, w // f), max(1, h // f))
    sx, sy = size[0] / w, size[1] / h
    lm = (np.asarray(landmarks, np.float32) + 0.5) * np.array([sx, sy], np.float32) - 0.5
    oval = region_mask(lm, "face_oval", size[::-1])
    outside = cv2.distanceTransform((oval < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    above = _below_eyes(lm, size[::-1], face_size / f) < 0.5
    near = (outside < _SEARCH_REACH * face_size / f) | above
    return cv2.resize(near.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True)
class FaceSkin:
    """Masks of one face crop, ``(H, W)`` float32 in [0, 1]."""

    skin: Mask
    """Where retouching acts."""
    search: Mask
    """Where blemishes are sought: the face's skin (up to a little beyond the oval) less the
    features and the lower nose (nostrils)."""


def face_skin(crop: Float32Image, landmarks: np.ndarray, face_size: float) -> FaceSkin:
    """Skin and spot-search masks of a float32 RGB face crop.

    ``landmarks``: the face's ``(478, 2)`` face-mesh points in the crop's pixels;
    ``face_size``: the face's size in those pixels (larger side of the landmark box). Faces
    over ``_HALF_FROM`` pixels are masked at half resolution and the masks upsampled: they are
    smooth at that scale, and it costs a quarter.
    """
    h, w = crop.shape[:2]
    if face_size < _HALF_FROM:
        return _face_skin(crop, landmarks, face_size)
    half = resize_area(crop, (max(1, w // 2), max(1, h // 2)))
    sx, sy = half.shape[1] / w, half.shape[0] / h
    lm = (np.asarray(landmarks, np.float32) + 0.5) * np.array([sx, sy], np.float32) - 0.5
    small = _face_skin(half, lm, face_size * math.sqrt(sx * sy))
    return FaceSkin(
        cv2.resize(small.skin, (w, h), interpolation=cv2.INTER_LINEAR),
        cv2.resize(small.search, (w, h), interpolation=cv2.INTER_LINEAR),
    )


def _face_skin(crop: Float32Image, landmarks: np.ndarray, face_size: float) -> FaceSkin:
    """:func:`face_skin` at the crop's own resolution."""
    h, w = crop.shape[:2]
    px = max(face_size, 1.0)
    oval = region_mask(landmarks, "face_oval", (h, w))
    features = feature_mask(landmarks, (h, w), px)
    certain = oval * (1.0 - features)
    outside = cv2.distanceTransform((oval < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    skin = _skin(crop, landmarks, px, oval, outside, features, certain)
    keep_out = np.maximum(features, spot_exclusion_mask(landmarks, (h, w), px))
    near = outside < _SEARCH_REACH * px
    return FaceSkin(skin, skin * (1.0 - keep_out) * near)


def _skin(
    crop: Float32Image,
    landmarks: np.ndarray,
    px: float,
    oval: np.ndarray,
    outside_dist: np.ndarray,
    features: np.ndarray,
    certain: np.ndarray,
) -> Mask:
    """The soft skin mask of a crop (see the module's description)."""
    h, w = crop.shape[:2]
    y, cr, cb = cv2.split(cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb))
    # The colour model is fitted to every other pixel of every other row: plenty, and fast.
    sample = certain[::2, ::2] > 0.99
    if int(sample.sum()) < _MIN_SAMPLES:
        return _feather(certain, px)
    ys = y[::2, ::2][sample]
    lo, hi = np.percentile(ys, [10, 95])
    keep = (ys >= lo) & (ys <= hi)
    c = np.stack([cr[::2, ::2][sample][keep], cb[::2, ::2][sample][keep]]).astype(np.float64)
    mean = c.mean(axis=1)
    cov = np.cov(c)
    dr, db = cr - np.float32(mean[0]), cb - np.float32(mean[1])
    inv = np.linalg.inv(cov + np.eye(2) * _MIN_CHROMA_STD**2).astype(np.float32)

    def distance(dr: np.ndarray) -> np.ndarray:
        return np.sqrt(inv[0, 0] * dr * dr + (2 * inv[0, 1]) * dr * db + inv[1, 1] * db * db)

    y_mean = max(float(ys.mean()), 1e-3)
    rel = y * np.float32(1.0 / y_mean)
    # Local contrast: hair strands and background clutter are busier than skin.
    k = 2 * max(1, round(_TEXTURE_RADIUS * px)) + 1
    m1 = cv2.blur(rel, (k, k))
    busy = np.sqrt(np.maximum(cv2.blur(rel * rel, (k, k)) - m1 * m1, 0.0))
    skin_busy = float(np.percentile(busy[::2, ::2][sample], 90))

    # Inside the oval a rise of Cr (redness: a blemish is skin, however red) is not held against
    # a pixel; hair, less red than skin, is.
    dim = cv2.GaussianBlur(rel, (0, 0), max(1.0, _DARK_BLUR * px))
    inside = oval * _ramp(distance(np.minimum(dr, 0.0)), *_INSIDE) * _rise(dim, *_DARK_INSIDE)
    outside = _ramp(outside_dist, 0.5 * _OUTSIDE_REACH * px, _OUTSIDE_REACH * px)
    outside *= (1.0 - oval) * _below_eyes(landmarks, (h, w), px)
    outside *= _ramp(distance(dr), *_OUTSIDE)
    outside *= _rise(rel, *_DARK_OUTSIDE) * _ramp(rel, *_BRIGHT_OUTSIDE)
    outside *= _ramp(busy, _BUSY[0] * skin_busy, _BUSY[1] * skin_busy)
    return _feather(_inset(inside + outside, oval, px) * (1.0 - features), px)


def feather_sigma(face_size: float) -> float:
    """Gaussian sigma (pixels) of a skin mask's feathered edge for a face this large."""
    return max(1.0, _FEATHER * face_size)


def _inset(mask: np.ndarray, oval: np.ndarray, face_size: float) -> np.ndarray:
    """``mask`` with its outer edge moved ``_INSET`` feather sigmas inwards, so that the
    feathered edge's tail stays on skin. Holes well inside the oval (a dark spot, a shadow) are
    not widened, and the features have margins of their own."""
    k = round(_INSET * feather_sigma(face_size))
    if k == 0:
        return mask
    core = cv2.erode(oval, _disk(2 * k))
    return np.minimum(mask, cv2.erode(np.maximum(mask, core), _disk(k)))


def _feather(mask: np.ndarray, face_size: float) -> Mask:
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), feather_sigma(face_size))
    return np.clip(blurred, 0, 1)


__all__ = [
    "FaceSkin",
    "face_skin",
    "feather_sigma",
    "feature_mask",
    "search_zone",
    "spot_exclusion_mask",
]
