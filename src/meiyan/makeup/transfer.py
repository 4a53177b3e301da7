"""Reference makeup transfer: warp, relight, then match colour region by region in Lab.

For each face of the photo and each selected region (lips, eyes, skin, brows, blush):

1. **Lighting compensation.** Directional light shows as a luminance gradient across the face.
   A plane ``log(L* + 16) = c0 + c1 u + c2 v`` (``u, v``: face-frame coordinates in
   inter-ocular distances, so the slopes of two faces compare) is fitted by weighted least
   squares to the bare skin of each face. Where the reference's pixels are copied in place (the
   spatial step, 3.) its gradient is swapped for the photo's, about the region's own centroid,
   so the reference's light direction does not come along (one cheek lit, the other in shade).
   The histogram step (4.) is a monotone function of the photo's own values and cannot move
   light or shadow: the photo keeps its light, and only each region's tone, contrast and colour
   follow the reference's. Exposure and white balance cannot be told apart from makeup in one
   photo and are not compensated.
2. **Pose correction.** The reference face is warped onto the photo's face along the landmark
   Delaunay triangulation (:mod:`meiyan.makeup.warp`), with the reference's own region masks, so
   that only reference lip pixels inform the photo's lips (an open reference mouth puts no
   teeth into them) and hidden, folded parts of a turned reference count for nothing.
3. **Spatial colour.** For eyes, blush and lips, whose makeup has a layout (shadow darkest at
   the lash line, blush on the apple, ombré lips), the low-pass Lab difference between the
   relit, warped reference and the photo is added, by normalised convolution (H. Knutsson and
   C.-F. Westin, "Normalized and differential convolution", CVPR 1993) over the pixels both
   faces trust; wide blurs run on block means and are interpolated back, the low-pass field
   being smooth. Blush moves only chroma this way: the lightness layout of a cheek is mostly
   the shape of the face under the reference's light (cheekbone highlight, contour shadow).
4. **Histogram matching.** Lightness and the two principal chroma axes of the photo's region
   are mapped through the monotone transfer ``F_ref^-1(F_photo(v))`` of the two weighted
   cumulative histograms (the reference's taken over its own region, in its own geometry),
   the region-wise colour transfer that PSGAN uses as its makeup loss (W. Jiang et al.,
   "PSGAN: Pose and Expression Robust Spatial-Aware GAN for Customizable Makeup Transfer",
   CVPR 2020; after T. Li et al., "BeautyGAN", ACM MM 2018), here applied to the image
   itself. The lightness transfer's slope is bounded so that shading and texture are neither
   crushed nor exaggerated past a factor (on skin and blush: a matte foundation flattens
   shading, down to a third, a contour deepens it, up to 2.5 times; stretching is bounded
   more tightly than flattening because it amplifies the photo's noise and blotches too); on
   skin, blush and lips only the base layer is matched and the photo keeps its own fine
   detail (pores, freckles, lip lines and the glints of its own light), as in D. Guo and
   T. Sim, "Digital face makeup by example", CVPR 2009. Pixels that do not look like the
   region's skin (hair across the face) neither count nor change in skin and blush.
5. **Shade.** The result is blended into the photo by the region's soft mask times its shade
   (0 leaves the photo as is, 1 is the full transfer).

Every region's transfer is a function of the photo's own pixels, not of the regions done
before it: where soft masks overlap (blush and eye shadow over foundation) the layers blend
instead of compounding, so the slope bounds hold for the result. The reference's region
colours already include the skin tone under its makeup. Layers are blended skin first, then
blush, eyes, brows and lips.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask, to_float32
from meiyan.face import Face
from meiyan.face.regions import FaceFrame
from meiyan.makeup.colour import belonging, rgb_to_lab
from meiyan.makeup.faces import FaceCrop, main_face
from meiyan.makeup.regions import REGION_NAMES, makeup_masks, mask_sets
from meiyan.makeup.roi import (
    BLOCK_SIGMA,
    Box,
    coarse_sigma,
    enlarge,
    grow,
    inner,
    reach,
    shrink,
    support,
    union,
)
from meiyan.makeup.warp import face_warp

ORDER: tuple[str, ...] = ("skin", "blush", "eyes", "brows", "lips")
"""The order in which the regions' layers are blended, each over those before."""

STATS_PART: dict[str, str] = {
    "skin": "skin_core",
    "blush": "blush",
    "eyes": "eyes",
    "brows": "brows",
    "lips": "lips",
}
"""The hard mask each region's colour is measured on (the skin tone away from other makeup)."""


@dataclass(frozen=True)
class _Rule:
    """How one region is transferred.

    ``spatial``: Gaussian sigma of the spatial step in inter-ocular distances (``None``: no
    spatial step); ``spatial_lightness``: whether that step moves lightness too, or only
    chroma; ``keep_detail``: match the base layer's lightness and keep the photo's own
    detail layer; ``slopes``: bounds ``(low, high)`` of the lightness transfer's slope.
    Skin and blush are wide, shaded areas: their texture and the pattern of their shading stay
    the photo's, as the lighting compensation asks (only the shading's contrast may follow the
    reference's). Eyes, brows and lips carry the makeup's own layout and texture (lashes,
    liner, ombré lips), so their lightness is matched more freely; lips keep the photo's fine
    detail, whose glints come from the photo's own light.
    """

    spatial: float | None
    spatial_lightness: bool
    keep_detail: bool
    slopes: tuple[float, float]


_RULES: dict[str, _Rule] = {
    "skin": _Rule(spatial=None, spatial_lightness=False, keep_detail=True, slopes=(1 / 3, 2.5)),
    "blush": _Rule(spatial=0.2, spatial_lightness=False, keep_detail=True, slopes=(1 / 3, 2.5)),
    "eyes": _Rule(spatial=0.1, spatial_lightness=True, keep_detail=False, slopes=(0.5, 2.0)),
    "brows": _Rule(spatial=None, spatial_lightness=False, keep_detail=False, slopes=(0.5, 2.0)),
    "lips": _Rule(spatial=0.08, spatial_lightness=True, keep_detail=True, slopes=(0.5, 2.0)),
}
# Detail layer: what a Gaussian of this sigma (inter-ocular distances) removes (pores, fine
# lines, hairs).
_DETAIL = 0.03
_BINS = 1024
# Bound of the chroma transfer's slope along the reference's minor chroma axis, which carries
# little of its colour: stretched further, the photo's own noise would turn into hues (greys,
# greens) the reference hardly has.
_MINOR_CHROMA_SLOPE = 1.5
_TAIL = 0.005  # the transfer is a plain shift beyond these quantiles of the photo's region
_L_OFFSET = 16.0  # L* + 16 is proportional to the cube root of luminance (CIE 1976)
_SPATIAL_FALLBACK = 0.05  # below this local trust the spatial step falls back to the mean
_SKIN_LIKE = frozenset({"skin", "blush"})
_BELONGING_SMOOTH = 0.05  # sigma (inter-ocular distances) of the foundation's skin weight


@dataclass(frozen=True)
class FaceAnalysis:
    """One face as the transfer sees it: window, Lab pixels, masks, region weights, frame and
    lighting gradient (see :func:`analyse`)."""

    points: np.ndarray
    lab: np.ndarray
    base: np.ndarray  # lab without its detail layer
    hard: dict[str, Mask]
    weights: dict[str, Mask]  # per region: where its colour is measured, and how much
    frame: FaceFrame
    uv: np.ndarray  # (H, W, 2) face-frame coordinates of every pixel
    slopes: np.ndarray  # (d/du, d/dv) of log(L + 16)

    @cached_property
    def skin_likeness(self) -> Mask:
        """How much each pixel looks like the face's skin, smoothed: where foundation and blush
        may go (hair or a hand across the face stays as it is)."""
        likeness = belonging(self.lab, self.hard["skin"])
        return cv2.GaussianBlur(likeness, (0, 0), _BELONGING_SMOOTH * self.frame.scale)


def _uv_grid(shape: tuple[int, int], frame: FaceFrame) -> np.ndarray:
    """Face-frame coordinates ``(H, W, 2)`` of every pixel of a window: :meth:`FaceFrame.uv`
    is affine and 0 at the frame's origin, so it is the sum of its values along the origin's
    row and along its column (two short calls instead of one per pixel)."""
    h, w = shape
    ox, oy = frame.origin
    along_row = frame.uv(np.column_stack([np.arange(w), np.full(w, oy)]))
    along_col = frame.uv(np.column_stack([np.full(h, ox), np.arange(h)]))
    out = np.empty((h, w, 2))
    for k in range(2):  # a channel at a time: NumPy is slow at broadcasting over 2-pixel rows
        np.add(along_row[:, k], along_col[:, k, None], out=out[..., k])
    return out


def _slopes(lab: np.ndarray, weights: Mask, uv: np.ndarray) -> np.ndarray:
    """Weighted least-squares plane ``log(L + 16) ~ c0 + c1 u + c2 v``: its slopes."""
    sel = weights > 1e-3
    if sel.sum() < 3:
        return np.zeros(2)
    w = np.sqrt(weights[sel].astype(np.float64))
    design = np.column_stack([np.ones(sel.sum()), uv[sel]])
    target = np.log(np.maximum(lab[..., 0][sel].astype(np.float64), 0.0) + _L_OFFSET)
    coef, *_ = np.linalg.lstsq(design * w[:, None], target * w, rcond=None)
    return coef[1:]


def _base(lab: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The base layer: ``lab`` without details smaller than ``_DETAIL`` inter-ocular distances.

    The split into a large-scale layer that takes the makeup's colour and a detail layer that
    stays follows D. Guo and T. Sim, "Digital face makeup by example", CVPR 2009.
    """
    sigma = _DETAIL * frame.scale
    out = lab.copy()
    out[..., 0] = cv2.GaussianBlur(lab[..., 0], (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return out


def analyse(
    lab: np.ndarray, points: np.ndarray, hard: dict[str, np.ndarray] | None = None
) -> FaceAnalysis:
    """The face at ``points`` (window pixels) in the float32 Lab window ``lab``: its masks
    (``hard``: its hard-edged makeup masks, if already made), the weights its regions are
    measured with, its frame and its lighting gradient."""
    if hard is None:
        hard = makeup_masks(points, lab.shape[:2], soft=False)
    frame = FaceFrame.of(points)
    uv = _uv_grid(lab.shape[:2], frame)
    weights = {}
    for region, part in STATS_PART.items():
        mask = hard[part]
        # Skin-like regions: hair or a hand across them is not measured.
        weights[region] = mask * belonging(lab, mask) if region in _SKIN_LIKE else mask
    return FaceAnalysis(
        points=points,
        lab=lab,
        base=_base(lab, frame),
        hard=hard,
        weights=weights,
        frame=frame,
        uv=uv,
        slopes=_slopes(lab, weights["skin"], uv),
    )


RECALLED = 4
"""References :meth:`Reference.recall` keeps (the least recently used goes first)."""
RECALL_PIXELS = 2_000_000
"""Larger reference pictures are not kept (each kept one holds a float32 copy: up to 24 MB)."""
_recalled: OrderedDict[tuple, Reference] = OrderedDict()
_recall_lock = threading.Lock()


@dataclass(frozen=True)
class Reference:
    """A makeup reference: its picture (float32 RGB in [0, 1]) and the face to copy."""

    image: Float32Image
    face: Face

    @classmethod
    def of(cls, image: np.ndarray) -> Reference:
        """The reference in an RGB image (uint8 or float32); :class:`NoFaceError` if faceless."""
        rgb = to_float32(image, "reference")
        return cls(image=rgb, face=main_face(rgb, "reference"))

    @classmethod
    def recall(cls, image: np.ndarray) -> Reference:
        """:meth:`of`, remembered by content for the last :data:`RECALLED` pictures of at most
        :data:`RECALL_PIXELS`: code that passes the same reference array with every photo of a
        batch pays for its face pass and analysis once. The key is a hash of the pixels, so an
        array changed in place is a new reference."""
        if not isinstance(image, np.ndarray) or image.ndim != 3:
            return cls.of(image)  # not an image: :meth:`of` says what is wrong
        if image.shape[0] * image.shape[1] > RECALL_PIXELS:
            return cls.of(image)
        pixels = np.ascontiguousarray(image)
        key = (pixels.shape, pixels.dtype.str, hashlib.blake2b(pixels, digest_size=16).digest())
        with _recall_lock:
            if key in _recalled:
                _recalled.move_to_end(key)
                return _recalled[key]
        made = cls.of(pixels)
        with _recall_lock:
            _recalled[key] = made
            while len(_recalled) > RECALLED:
                _recalled.popitem(last=False)
        return made

    @cached_property
    def analysis(self) -> FaceAnalysis:
        """The reference face at working resolution (computed once)."""
        crop = FaceCrop.of(self.image, self.face)
        return analyse(rgb_to_lab(crop.rgb), crop.points)


def _bins(v: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The bin of each value among ``_BINS`` equal bins over ``[lo, hi]``, and its position
    within the bin (0 to 1): a grid this regular needs no search, as ``np.interp`` does."""
    t = (np.asarray(v, np.float64) - lo) * (_BINS / (hi - lo))
    k = t.astype(np.intp)
    np.clip(k, 0, _BINS - 1, out=k)
    t -= k
    return k, t


def _match_channel(
    values: np.ndarray,
    weights: np.ndarray,
    ref_values: np.ndarray,
    ref_weights: np.ndarray,
    apply_to: np.ndarray,
    slopes: tuple[float, float] | None,
) -> np.ndarray:
    """One channel of :func:`match_histograms`; ``slopes``: bounds of the transfer's slope."""
    lo = float(min(values.min(), ref_values.min(), apply_to.min()))
    hi = float(max(values.max(), ref_values.max(), apply_to.max()))
    if hi - lo < 1e-6:
        return apply_to.astype(np.float32)
    edges = np.linspace(lo, hi, _BINS + 1)
    ramp = np.arange(_BINS + 1) * 1e-12  # makes flat stretches of a CDF strictly increasing

    def cdf(k: np.ndarray, w: np.ndarray) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(np.bincount(k, weights=w, minlength=_BINS))])
        return cum / max(cum[-1], 1e-12) + ramp

    k, frac = _bins(values, lo, hi)
    own = cdf(k, weights)
    lut = np.interp(own, cdf(_bins(ref_values, lo, hi)[0], ref_weights), edges)
    slope = np.diff(lut) / np.diff(edges)
    if slopes is not None:
        slope = np.clip(slope, *slopes)
    centre = own[1:] - ramp[1:]
    slope[(centre <= _TAIL) | (centre >= 1.0 - _TAIL)] = 1.0
    # Rebuild the transfer from its slopes, shifted so that the mean maps to the mean; it is
    # linear within each bin.
    rise = slope * np.diff(edges)
    rebuilt = np.concatenate([[0.0], np.cumsum(rise)])
    rebuilt += np.average(ref_values, weights=ref_weights) - np.average(
        rebuilt[k] + frac * rise[k], weights=weights
    )
    k, frac = _bins(apply_to, lo, hi)
    return (rebuilt[k] + frac * rise[k]).astype(np.float32)


def match_histograms(
    values: np.ndarray,
    weights: np.ndarray,
    ref_values: np.ndarray,
    ref_weights: np.ndarray,
    apply_to: np.ndarray,
    max_slope: float | None = None,
    min_slope: float | None = None,
    minor_chroma_slope: float | None = None,
) -> np.ndarray:
    """Map Lab pixels ``apply_to`` ``(K, 3)`` so that the weighted distribution of ``values``
    ``(N, 3)`` (weights ``(N,)``) becomes that of ``ref_values`` ``(M, 3)``.

    Each channel is mapped by ``F_ref^-1(F(v))`` with ``F`` and ``F_ref`` the weighted
    cumulative histograms (1024 bins, linear within bins). Chroma is matched along the
    reference's principal chroma axes rather than along a and b, so that correlated colours
    (a pink blush beside a pale highlight) do not mix into colours the reference lacks (Xiao
    and L. Ma, "Color transfer in correlated color space", VRCIA 2006). Outside the central 99%
    of ``values`` the transfer continues with slope 1 (a constant shift). ``max_slope`` bounds
    the lightness transfer's slope from above, as a clip limit bounds contrast in
    contrast-limited histogram equalisation (S. M. Pizer et al., "Adaptive histogram
    equalization and its variations", CVGIP 39(3), 1987), so that shading and texture, noise
    included, are not exaggerated; ``min_slope`` (default ``1 / max_slope``) bounds it from
    below, so that they are not crushed. ``minor_chroma_slope`` bounds the slope along the
    reference's minor chroma axis to ``[1/s, s]``. Every transfer is shifted so that the mean
    maps to the reference's mean.
    """
    out = np.empty(apply_to.shape, np.float32)
    slopes = None
    if max_slope is not None:
        slopes = (1.0 / max_slope if min_slope is None else min_slope, max_slope)
    out[:, 0] = _match_channel(
        values[:, 0], weights, ref_values[:, 0], ref_weights, apply_to[:, 0], slopes
    )
    chroma = ref_values[:, 1:].astype(np.float64)
    mean = np.average(chroma, axis=0, weights=ref_weights)
    cov = np.cov((chroma - mean).T, aweights=ref_weights) if len(chroma) > 1 else np.eye(2)
    axes = np.linalg.eigh(np.atleast_2d(cov))[1]  # columns: principal chroma directions
    src, ref, dst = (x[:, 1:].astype(np.float64) @ axes for x in (values, ref_values, apply_to))
    minor = None if minor_chroma_slope is None else (1 / minor_chroma_slope, minor_chroma_slope)
    bounds = (minor, None)  # eigh: the minor axis first
    rotated = np.column_stack(
        [_match_channel(src[:, k], weights, ref[:, k], ref_weights, dst[:, k], bounds[k])
         for k in range(2)]
    )  # fmt: skip
    out[:, 1:] = rotated @ axes.T
    return out


def swap_gradient(
    lab: np.ndarray, uv: np.ndarray, weights: np.ndarray, own: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """``(N, 3)`` Lab pixels at face-frame points ``uv`` ``(N, 2)`` with the luminance gradient
    ``own`` (slopes of ``log(L + 16)``) replaced by ``target``, about the weighted centroid."""
    centre = (uv * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1e-12)
    gain = np.exp((uv - centre) @ (np.asarray(target) - np.asarray(own))).astype(np.float32)
    out = lab.copy()
    out[:, 0] = (lab[:, 0] + _L_OFFSET) * gain - _L_OFFSET
    return out


def _spatial(cur: np.ndarray, ref: np.ndarray, trust: Mask, sigma: float, box: Box) -> np.ndarray:
    """Low-pass of ``ref - cur`` by normalised convolution with weights ``trust``, over ``box``
    of the window; where the local trust is low it tends to the weighted mean difference.

    The difference times the trust and the trust itself are blurred as the four channels of
    one image, within the blur's reach of ``box`` and of the trust (zero beyond, as blurring
    the whole window gives them). A wide blur leaves a smooth field, so it is done on block
    means (a whole factor keeping at least ``BLOCK_SIGMA`` blocks per sigma), and the
    smooth quotient is interpolated back bilinearly over ``box``.
    """
    near = grow(union(box, support(trust)), reach(sigma), trust.shape)
    weight = trust[near]
    diff = cv2.split(cv2.subtract(ref[near], cur[near]))
    stack = cv2.merge([*(cv2.multiply(d, weight) for d in diff), weight])
    *products, total = cv2.sumElems(stack)  # zero beyond ``near``
    mean = np.array(products[:3], np.float32) / np.float32(max(total, 1e-9))
    factor = max(1, int(sigma / BLOCK_SIGMA))
    sums = cv2.GaussianBlur(
        shrink(stack, factor), (0, 0), coarse_sigma(sigma, factor), borderType=cv2.BORDER_CONSTANT
    )
    eps = _SPATIAL_FALLBACK * max(float(sums[..., 3].max()), 1e-9)
    quotient = (sums[..., :3] + eps * mean) / (sums[..., 3] + eps)[..., None]
    return enlarge(quotient, factor, inner(box, near))


@dataclass(frozen=True)
class _Warped:
    """A reference warped onto the photo's window: Lab, its own region weights, validity."""

    lab: np.ndarray
    weights: dict[str, Mask]
    valid: Mask


def _warp(ref: Reference, photo: FaceAnalysis) -> _Warped:
    a = ref.analysis
    stack = np.dstack([a.lab, *(a.weights[r] for r in REGION_NAMES)])
    warp = face_warp(a.points, photo.points, photo.lab.shape[:2], a.lab.shape[:2])
    out = warp.apply(stack)
    return _Warped(
        lab=out[..., :3],
        weights={r: out[..., 3 + i] for i, r in enumerate(REGION_NAMES)},
        valid=warp.valid,
    )


_PIXEL = np.dtype((np.void, 12))  # one float32 Lab pixel as a single item


def _pixels(image: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``(N, 3)`` pixels of a contiguous ``(H, W, 3)`` ``image`` at flat indices ``at``: what
    ``image[mask]`` gives for the mask of those indices, several times faster."""
    return np.take(image.reshape(-1, 3), at, axis=0)


def _put_pixels(image: np.ndarray, at: np.ndarray, values: np.ndarray) -> None:
    """Write ``(N, 3)`` float32 ``values`` into a contiguous float32 ``(H, W, 3)`` ``image`` at
    flat indices ``at``, each pixel moved as one 12-byte item (several times faster than
    ``image.reshape(-1, 3)[at] = values``)."""
    np.put(image.view(_PIXEL).ravel(), at, np.ascontiguousarray(values).view(_PIXEL).ravel())


def transfer_face(
    lab: np.ndarray,
    points: np.ndarray,
    references: Mapping[str, Reference],
    shades: Mapping[str, float],
) -> np.ndarray:
    """Transfer makeup onto one face: ``lab`` is the float32 Lab window around it, ``points``
    its ``(478, 2)`` landmarks in window pixels, ``references`` the reference per region and
    ``shades`` the strength per region (regions absent from either are left alone)."""
    shape = lab.shape[:2]
    soft, hard = mask_sets(points, shape)
    photo = analyse(lab, points, hard)
    warped: dict[int, _Warped] = {}
    cur = lab.copy()
    for region in ORDER:
        ref = references.get(region)
        shade = float(shades.get(region, 0.0))
        if ref is None or shade <= 0.0:
            continue
        r = ref.analysis
        rule = _RULES[region]
        src_w, ref_w = photo.weights[region], r.weights[region]
        src_sel, ref_sel = src_w > 0, ref_w > 0
        if src_w[src_sel].sum() < 1.0 or ref_w[ref_sel].sum() < 1.0:
            continue
        # The reference's colours, in its own geometry.
        ref_px = (r.base if rule.keep_detail else r.lab)[ref_sel]
        apply = soft[region]
        if region in _SKIN_LIKE:  # no foundation or blush on hair across the face
            apply = apply * photo.skin_likeness
        sel = apply > 0
        # The photo's own pixels, not the result so far: overlapping layers blend, and their
        # slope bounds hold for the result instead of compounding.
        base = photo.base if rule.keep_detail else lab
        at = np.flatnonzero(sel)  # the pixels changed, as flat indices (cheaper than masks)
        detail = _pixels(lab, at) - _pixels(base, at)
        box = support(sel)
        if rule.spatial is not None and box is not None:
            if id(ref) not in warped:
                warped[id(ref)] = _warp(ref, photo)
            w = warped[id(ref)]
            trust = src_w * w.weights[region] * w.valid
            t = trust > 0
            sigma = rule.spatial * photo.frame.scale
            if rule.spatial_lightness:
                relit = w.lab.copy()
                relit[t] = swap_gradient(w.lab[t], photo.uv[t], trust[t], r.slopes, photo.slopes)
                step = _spatial(base, relit, trust, sigma, box)
            else:  # chroma only, which the gradient swap leaves as is
                step = _spatial(base, w.lab, trust, sigma, box)
                step[..., 0] = 0.0
            base = base.copy()
            base[box] += step * sel[box][..., None]
        mapped = match_histograms(
            _pixels(base, np.flatnonzero(src_sel)),
            src_w[src_sel],
            ref_px,
            ref_w[ref_sel],
            _pixels(base, at),
            max_slope=rule.slopes[1],
            min_slope=rule.slopes[0],
            minor_chroma_slope=_MINOR_CHROMA_SLOPE,
        )
        alpha = (shade * apply.ravel()[at])[:, None]
        now = _pixels(cur, at)
        now += alpha * (mapped + detail - now)
        _put_pixels(cur, at, now)
    return cur
