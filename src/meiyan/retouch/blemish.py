"""Blemish removal: scale-space spot detection and texture-preserving healing.

**Detection.** Spots are blobs: the scale-normalised Laplacian of Gaussian ``σ² ∇²(G_σ * f)``
peaks at a blob's centre at a scale proportional to its radius (T. Lindeberg, "Feature detection
with automatic scale selection", IJCV 30(2), 1998). It runs on two channels: log-luminance
(dark spots: acne marks, small dark spots, moles, freckles) and Cr chroma (red spots: pimples,
inflamed acne), in octaves on copies reduced by powers of two as in D. G. Lowe, "Distinctive
image features from scale-invariant keypoints", IJCV 60(2), 2004. Scale-space maxima count
when they clear a contrast threshold that adapts to the skin's own texture (a multiple of the
median absolute response inside the skin, between an absolute floor and a cap), lie at a
scale inside the size limits (``R_MIN`` to ``R_MAX`` of the face: not at the first or last
scale), sit wholly inside the skin, and are round (Lowe's Hessian test rejects lines and
creases). Pores are below the size and contrast floors; facial features and the nostrils are
outside the search mask. A spot on a darker patch answers at too coarse a scale, so its radius
is shrunk while the band just inside it holds less than half the centre's contrast.

**Classification.** Each spot's centre is compared with a ring around it: relative luminance
drop (``depth``), Cr rise (``redness``) and Cb change. Haemoglobin (pimples) raises Cr and
keeps Cb; melanin (freckles, brown marks, moles) lowers Cb. Red spots are blemishes; dark spots
over half deep are moles (kept unless asked); small dark spots with at least five others of
half their depth or more nearby are freckles, which ``freckles="keep"`` (the default) keeps,
``"reduce"`` lightens by half and ``"remove"`` removes; other dark spots are blemishes.

**Healing.** Each spot is filled as a healing brush does (T. Georgiev, "Photoshop Healing Brush:
a Tool for Seamless Cloning", ECCV Workshops 2004): a nearby patch of clean skin is copied with
its own texture, and its low frequencies are replaced with those of the spot's surroundings (a
normalised convolution over the skin outside every spot, H. Knutsson and C.-F. Westin,
"Normalized and differential convolution", CVPR 1993). Of eight candidate patches the one whose
fill best continues the skin around the hole wins (the exemplar choice of A. Criminisi, P.
Pérez and K. Toyama, "Region filling and object removal by exemplar-based image inpainting",
IEEE TIP 13(9), 2004), its detail scaled down where it is stronger than the surroundings'. The
fill therefore carries real pores and grain, not a smear, and meets its border without a
seam. The plan (source offset and low-frequency correction) is made once at the working
resolution and applied at any scale, so full-resolution pixels are healed with
full-resolution texture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask, from_float32, to_float32
from meiyan._resample import reduce_blocks
from meiyan._threads import pool
from meiyan.face.window import upsample_window
from meiyan.filters.highpass import luma

FRECKLE_MODES = ("keep", "reduce", "remove")
"""What blemish removal does with freckles."""

# Size limits as fractions of the face size (the larger side of its landmark box).
R_MIN = 0.003
R_MAX = 0.03
_R_MIN_PX = 0.9  # below this radius (working pixels) a spot is not resolved
_LEVELS_PER_OCTAVE = 3
_SIGMA_FLOOR = 1.2  # each octave's copy is reduced until its sigmas are at least this (pixels)
_AREA_BLUR = 0.5  # blur (sigma, pixels of the copy) that area-averaged reduction leaves
# Contrast thresholds of the normalised LoG responses: absolute floors and multiples of the
# skin's robust response spread. A Gaussian spot of depth A answers A / 2 at its own scale.
_T_DARK = 0.035  # log-luminance: spots about 7% darker than their surroundings
_T_RED = 0.010  # Cr (0-1 scale)
_NOISE_K = 4.0
_T_CAP = 3.0  # at most this many times the floor (shading raises coarse responses)
_EDGE_RATIO = 4.0  # largest ratio of the Hessian's principal curvatures (Lowe uses 10)
# Classification (measured depth is relative, redness is a Cr difference on the 0-1 scale).
_MIN_DEPTH = 0.04
_MIN_REDNESS = 0.008
# Haemoglobin (red spots) takes green, so Cb holds or rises as Cr rises; melanin (freckles,
# brown marks, moles) takes blue most, so Cb falls. Red spots are those with Cb falling by at
# most this share of their Cr rise.
_RED_CB = 0.5
_MOLE_DEPTH = 0.5
# Radius refinement: shrink by _SHRINK (up to _SHRINK_STEPS times) while the band between 0.7
# and 1 radius holds less than _EDGE_SHARE of the centre's contrast.
_SHRINK = 0.8
_SHRINK_STEPS = 3
_EDGE_SHARE = 0.5
_FRECKLE_R = 0.015  # freckles are at most this large (fraction of the face)
_FRECKLE_REACH = 0.1  # ... and have _FRECKLE_COUNT similar spots within this distance
_FRECKLE_COUNT = 5
_MAX_SPOTS = 2000
_MIN_SIZE = 8  # no spots are sought in skin (or an octave's copy of it) smaller than this
# Healing geometry, in spot radii.
HOLE = 1.4  # the hole covers the spot and most of its soft falloff
_FEATHER = 1.4  # the fill fades out between HOLE and _FEATHER * HOLE
_BLUR = 0.6  # sigma of the low-frequency estimate, in hole radii
_KNOWN_FROM = 1.0  # pixels further than this (hole radii) from every spot feed the estimate
# Texture sources: eight directions, 2.6 hole radii away (unit vector, distance).
_DIRECTIONS = np.array([(math.cos(a), math.sin(a), 2.6) for a in np.arange(8) * (math.pi / 4)])
_REACH_OUT = float(_DIRECTIONS[:, 2].max())


@dataclass(frozen=True)
class Spot:
    """A detected spot at working resolution: centre ``(x, y)`` and ``radius`` in pixels.

    ``kind`` is ``"red"``, ``"dark"``, ``"freckle"`` or ``"mole"``; ``depth`` the relative
    luminance drop against the ring around it, ``redness`` its Cr rise, ``score`` the LoG
    response over the threshold.
    """

    x: float
    y: float
    radius: float
    kind: str
    depth: float
    redness: float
    score: float


def _levels(face_size: float) -> np.ndarray:
    """LoG scales from one below the smallest to one above the largest allowed spot."""
    r_min = max(_R_MIN_PX, R_MIN * face_size)
    r_max = max(1.5 * r_min, R_MAX * face_size)
    s_min, s_max = r_min / math.sqrt(2), r_max / math.sqrt(2)
    n = math.ceil(math.log2(s_max / s_min) * _LEVELS_PER_OCTAVE)
    return s_min * 2.0 ** (np.arange(-1, n + 2) / _LEVELS_PER_OCTAVE)


def _channels(image: Float32Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Luminance, Cr and Cb (without offsets), float32."""
    r, g, b = cv2.split(image)
    return luma(image), 0.5 * r - 0.4187 * g - 0.0813 * b, 0.5 * b - 0.1687 * r - 0.3313 * g


def _gain(floor: float, values: np.ndarray, norm: float) -> float:
    """``norm`` over the contrast threshold of a level whose raw responses in the skin are
    ``values``: ``_NOISE_K`` robust spreads (normal-consistent median absolute deviation) of
    the normalised responses ``norm * values``, between ``floor`` and ``_T_CAP`` times it.
    Grainy skin raises the threshold; the cap keeps shading at coarse scales from raising it
    further."""
    spread = 0.0
    if values.size:
        spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return norm / min(max(floor, _NOISE_K * norm * spread), _T_CAP * floor)


def _box_means(integral: np.ndarray, xs: np.ndarray, ys: np.ndarray, half: np.ndarray):
    """Mean of each channel over the squares ``[x - half, x + half]`` (clipped to the image)."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    x0 = np.clip(xs - half, 0, w - 1)
    x1 = np.clip(xs + half, 0, w - 1) + 1
    y0 = np.clip(ys - half, 0, h - 1)
    y1 = np.clip(ys + half, 0, h - 1) + 1
    s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
    return s / area[:, None], area


def _sample(mask: np.ndarray, count: int = 2000) -> np.ndarray:
    """A regular subset of the true pixels of ``mask`` (about ``count`` of them)."""
    step = max(1, int(math.sqrt(max(1, int(mask.sum())) / count)))
    sub = np.zeros_like(mask)
    sub[::step, ::step] = mask[::step, ::step]
    return sub


def _round(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Lowe's edge test at pixels ``(x, y)`` of ``c``: the Hessian is definite and its
    principal curvatures differ by less than ``_EDGE_RATIO``."""
    centre = c[y, x]
    dxx = c[y, x + 1] + c[y, x - 1] - 2 * centre
    dyy = c[y + 1, x] + c[y - 1, x] - 2 * centre
    dxy = 0.25 * (c[y + 1, x + 1] + c[y - 1, x - 1] - c[y + 1, x - 1] - c[y - 1, x + 1])
    det = dxx * dyy - dxy * dxy
    return (det > 0) & ((dxx + dyy) ** 2 < det * ((_EDGE_RATIO + 1) ** 2 / _EDGE_RATIO))


def _parabola(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset of the vertex of the parabola through ``(-1, a), (0, b), (1, c)``, in [-0.5, 0.5]
    (0 where it is not a maximum): sub-pixel peak positions, one axis at a time."""
    curv = a - 2 * b + c
    off = np.where(curv < 0, 0.5 * (a - c) / np.where(curv < 0, curv, -1.0), 0.0)
    return np.clip(off, -0.5, 0.5)


@dataclass
class _Level:
    """One scale of an octave: blurred channels, normalised responses, score and its 3x3 max."""

    k: int
    blurred: tuple[np.ndarray, np.ndarray]
    dark: np.ndarray
    red: np.ndarray
    score: np.ndarray
    dil: np.ndarray


@dataclass
class _Copy:
    """An octave's copy of the channels: ``o``, its reduction ``f`` (``2 ** o``), the channels,
    the distance to the skin's edge (pixels of the copy) and the skin pixels sampled for the
    thresholds (flat indices)."""

    o: int
    f: int
    chans: tuple[np.ndarray, np.ndarray]
    room: np.ndarray
    sample: np.ndarray


def _copy(
    o: int, chans: tuple[np.ndarray, np.ndarray], inside: np.ndarray, skin: np.ndarray
) -> _Copy:
    """Octave ``o``'s copy of the channels (log-luminance and Cr), reduced exactly ``2 ** o``
    times: the channels are padded (edge pixels repeated) to a whole number of ``f x f``
    blocks and the blocks averaged, so that copy pixel ``i`` covers pixels ``f i`` to
    ``f i + f - 1``, as :func:`_peaks` maps positions back."""
    f = 2**o
    if o > 0:
        chans = tuple(reduce_blocks(c, f) for c in chans)
        inside = reduce_blocks(inside, f, cv2.INTER_NEAREST) / f
        skin = reduce_blocks(skin.astype(np.uint8), f, cv2.INTER_NEAREST) > 0
    return _Copy(o, f, chans, inside, np.flatnonzero(_sample(skin)))


def _responses(
    copy: _Copy, channel: int, levels: range, sigmas: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One channel of an octave's copy blurred to each of ``levels``, with its normalised
    Laplacian divided by its threshold."""
    # Dark blobs have a positive Laplacian of log-luminance, red ones a negative one of Cr;
    # each is normalised by sigma squared and divided by its threshold.
    floor, sign = ((_T_DARK, 1.0), (_T_RED, -1.0))[channel]
    blurred, prev_s = copy.chans[channel], 0.0 if copy.o == 0 else _AREA_BLUR
    out = []
    for k in levels:
        s = sigmas[k] / copy.f
        step = math.sqrt(max(s * s - prev_s * prev_s, 0.01))
        blurred = cv2.GaussianBlur(blurred, (0, 0), step)
        prev_s = s
        response = cv2.Laplacian(blurred, cv2.CV_32F, ksize=1)
        response *= np.float32(_gain(floor, response.ravel()[copy.sample], sign * s * s))
        out.append((blurred, response))
    return out


def _scan(
    copy: _Copy,
    levels: range,
    sigmas: np.ndarray,
    dark: list[tuple[np.ndarray, np.ndarray]],
    red: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Scale-space maxima (rows ``x, y, level, score``) at the inner ``levels`` of an octave's
    copy, from the :func:`_responses` of its two channels at ``levels``. Each level's score is
    the larger response, kept where a blob of its scale lies wholly in the skin."""
    found = [np.zeros((0, 4))]
    window: list[_Level] = []
    for k, (bd, rd), (br, rr) in zip(levels, dark, red, strict=True):
        s = sigmas[k] / copy.f
        score = cv2.max(rd, rr)
        # Responses outside the skin vanish (they would hide the maxima next to them from the
        # peak test).
        room = cv2.compare(copy.room, 2 * s + 1 / copy.f, cv2.CMP_GT)
        score = cv2.bitwise_and(score, score, mask=room)
        dil = cv2.dilate(score, np.ones((3, 3), np.uint8))
        window = [*window[-2:], _Level(k, (bd, br), rd, rr, score, dil)]
        if len(window) == 3:
            found.append(_peaks(*window, copy.f))
    return np.concatenate(found)


def _peaks(below: _Level, at: _Level, above: _Level, f: int) -> np.ndarray:
    """Rows ``x, y, level, score`` (in pixels of the unreduced image) of the round maxima of
    ``at`` over its 3x3x3 neighbourhood in scale space with a score of at least 1."""
    sc = at.score
    # Few pixels score 1 or more: the neighbourhood test runs on those alone, away from the
    # border.
    points = cv2.findNonZero(cv2.compare(sc, 1.0, cv2.CMP_GE))
    if points is None:
        return np.zeros((0, 4))
    x, y = points[:, 0, 0], points[:, 0, 1]
    h, w = sc.shape
    keep = (x > 0) & (y > 0) & (x < w - 1) & (y < h - 1)
    x, y = x[keep], y[keep]
    s = sc[y, x]
    keep = (s >= at.dil[y, x]) & (s >= below.dil[y, x]) & (s >= above.dil[y, x])
    x, y = x[keep], y[keep]
    # Round blobs only, judged on the channel that fired, at the blob's scale.
    red = at.red[y, x] > at.dark[y, x]
    ok = np.where(red, _round(at.blurred[1], x, y), _round(at.blurred[0], x, y))
    y, x = y[ok], x[ok]
    u = x + _parabola(sc[y, x - 1], sc[y, x], sc[y, x + 1])
    v = y + _parabola(sc[y - 1, x], sc[y, x], sc[y + 1, x])
    return np.column_stack(
        [(u + 0.5) * f - 0.5, (v + 0.5) * f - 0.5, np.full(y.size, at.k), sc[y, x]]
    )


def _pairs_near_in_x(xs: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of the points whose x differ by less than ``reach``:
    every pair that any test of closeness within ``reach`` can pass, found by sorting (not by
    comparing every point with every other)."""
    order = np.argsort(xs, kind="stable")
    sx = xs[order]
    k = np.arange(sx.size)
    count = np.maximum(np.searchsorted(sx, sx + reach, side="left") - k - 1, 0)
    first = np.repeat(k, count)
    second = first + 1 + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    a, b = order[first], order[second]
    return np.minimum(a, b), np.maximum(a, b)


def detect_spots(image: Float32Image, mask: Mask, face_size: float) -> list[Spot]:
    """Every spot in the skin of a float32 RGB image, classified, strongest first.

    ``mask``: ``(H, W)`` skin in [0, 1] (spots must lie wholly where it is above 0.5);
    ``face_size``: the face's size in pixels of ``image``, which sets the size limits
    (radius ``R_MIN`` to ``R_MAX`` of it, at least ``0.9`` pixel).

    As in Lowe's detector, scales come in octaves: each octave runs on a copy reduced by its
    power of two, so that a level's sigma there is at least ``_SIGMA_FLOOR`` pixels, and maxima
    are compared with the scales above and below computed on that same copy. The two channels
    are blurred and filtered apart (the finest octave's on the two threads of the pool), then
    their responses meet level by level.
    """
    skin = mask > 0.5
    rows, cols = np.nonzero(skin.any(axis=1))[0], np.nonzero(skin.any(axis=0))[0]
    if rows.size == 0:
        return []
    sigmas = _levels(face_size)
    h, w = mask.shape
    pad = math.ceil(3 * sigmas[-1]) + 2
    x0, y0 = max(0, cols[0] - pad), max(0, rows[0] - pad)
    x1, y1 = min(w, cols[-1] + pad + 1), min(h, rows[-1] + pad + 1)
    if min(y1 - y0, x1 - x0) < _MIN_SIZE:
        return []
    sub = np.ascontiguousarray(image[y0:y1, x0:x1])
    skin = skin[y0:y1, x0:x1]
    inside = cv2.distanceTransform(
        cv2.copyMakeBorder(skin.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
        cv2.DIST_L2,
        5,
    )[1:-1, 1:-1]
    y, cr, cb = _channels(sub)
    chans = (np.log(y + np.float32(0.02)), cr)

    octave = [max(0, math.floor(math.log2(s / _SIGMA_FLOOR))) for s in sigmas]
    # An octave's copy must keep a few pixels.
    octaves = [o for o in sorted(set(octave[1:-1])) if min(sub.shape[:2]) >> o >= _MIN_SIZE]
    levels = [[k for k in range(1, len(sigmas) - 1) if octave[k] == o] for o in octaves]
    if not octaves:
        return []
    spans = [range(inner[0] - 1, inner[-1] + 2) for inner in levels]
    # The octaves are independent, and so are the channels until their responses meet. The
    # finest octave (the costliest) is split: its two channels' responses are made side by
    # side, then its scan and the coarsest octaves run beside the next octave.
    finest = _copy(octaves[0], chans, inside, skin)

    def octave(i: int) -> np.ndarray:
        copy = _copy(octaves[i], chans, inside, skin)
        dark, red = (_responses(copy, c, spans[i], sigmas) for c in (0, 1))
        return _scan(copy, spans[i], sigmas, dark, red)

    cr_job = pool().submit(_responses, finest, 1, spans[0], sigmas)
    dark = _responses(finest, 0, spans[0], sigmas)
    red = cr_job.result()
    job = pool().submit(
        lambda: [
            *(octave(i) for i in range(2, len(octaves))),
            _scan(finest, spans[0], sigmas, dark, red),
        ]
    )
    found = [octave(i) for i in range(1, min(2, len(octaves)))]
    # Luminance, Cr and Cb summed over any box, for the classification.
    integral = cv2.integral(cv2.merge([y, cr, cb]), sdepth=cv2.CV_64F)
    found += job.result()
    table = np.concatenate(found)
    if table.size == 0:
        return []
    table = table[np.argsort(-table[:, 3])][:_MAX_SPOTS]
    xs, ys, sc = table[:, 0], table[:, 1], table[:, 3]
    radii = sigmas[table[:, 2].astype(int)] * math.sqrt(2)

    # One detection per blob: drop weaker ones centred inside a stronger one kept. Distances
    # are measured only between detections that close along x (pairs (i, j), i stronger),
    # and strongest first a detection is dropped by a kept one.
    i, j = _pairs_near_in_x(xs, float(radii.max()))
    near = np.hypot(xs[i] - xs[j], ys[i] - ys[j]) < np.maximum(radii[i], radii[j])
    i, j = i[near], j[near]
    order = np.lexsort((i, j))
    kept = np.ones(xs.size, bool)
    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        if kept[a]:
            kept[b] = False
    idx = np.flatnonzero(kept)
    return _classify(integral, xs[idx], ys[idx], radii[idx], sc[idx], face_size, (x0, y0))


def _classify(
    integral: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    radii: np.ndarray,
    scores: np.ndarray,
    face_size: float,
    origin: tuple[int, int],
) -> list[Spot]:
    """Measure depth and redness against a ring, drop faint spots, name the kind of each.

    ``integral``: the integral image of luminance, Cr and Cb; coordinates are in that image,
    and the spots are returned shifted by ``origin``."""
    ox, oy = origin
    ix, iy = np.round(xs).astype(int), np.round(ys).astype(int)
    centre, _ = _box_means(integral, ix, iy, np.maximum(1, np.round(0.5 * radii)).astype(int))
    outer, a_out = _box_means(integral, ix, iy, np.round(2.5 * radii).astype(int))
    inner, a_in = _box_means(integral, ix, iy, np.round(1.5 * radii).astype(int))
    s_out, s_in = outer * a_out[:, None], inner * a_in[:, None]
    ring = (s_out - s_in) / np.maximum(a_out - a_in, 1.0)[:, None]
    depth = 1.0 - centre[:, 0] / np.maximum(ring[:, 0], 1e-3)
    redness = centre[:, 1] - ring[:, 1]
    blueness = centre[:, 2] - ring[:, 2]
    visible = (depth >= _MIN_DEPTH) | (redness >= _MIN_REDNESS)
    red = (redness >= _MIN_REDNESS) & (blueness >= -_RED_CB * redness)

    # A spot on a darker patch (a shadow, stubble) answers at too coarse a scale: shrink the
    # radius while the band just inside it holds little of the centre's contrast.
    channel = np.where(red, 1, 0)
    sign = np.where(red, 1.0, -1.0)
    peak = sign * (centre[np.arange(xs.size), channel] - ring[np.arange(xs.size), channel])
    radii = radii.copy()
    for _ in range(_SHRINK_STEPS):
        r_out = np.round(radii).astype(int)
        r_in = np.round(0.7 * radii).astype(int)
        band_out, a_o = _box_means(integral, ix, iy, r_out)
        band_in, a_i = _box_means(integral, ix, iy, r_in)
        band = (band_out * a_o[:, None] - band_in * a_i[:, None]) / np.maximum(a_o - a_i, 1.0)[
            :, None
        ]
        edge = sign * (band[np.arange(xs.size), channel] - ring[np.arange(xs.size), channel])
        shrink = (r_in >= 1) & (r_out > r_in) & (edge < _EDGE_SHARE * peak)
        if not shrink.any():
            break
        radii[shrink] *= _SHRINK
    kind = np.where(red, "red", np.where(depth >= _MOLE_DEPTH, "mole", "dark")).astype(object)

    # Freckles: small dark spots among many others of at least half their depth.
    small_dark = (kind == "dark") & (radii <= _FRECKLE_R * face_size) & visible
    if small_dark.sum() > _FRECKLE_COUNT:
        px, py, pd = xs[small_dark], ys[small_dark], depth[small_dark]
        reach = _FRECKLE_REACH * face_size
        i, j = _pairs_near_in_x(px, reach)
        close = np.hypot(px[i] - px[j], py[i] - py[j]) < reach
        i, j = i[close], j[close]
        # Each close pair counts for either spot whose company the other is deep enough to be;
        # a spot is its own company unless its depth is negative (a dark spot found by its
        # redness), less the one it is for.
        company = (
            np.bincount(i[pd[j] >= 0.5 * pd[i]], minlength=pd.size)
            + np.bincount(j[pd[i] >= 0.5 * pd[j]], minlength=pd.size)
            + (pd >= 0.5 * pd)
            - 1
        )
        kind[np.flatnonzero(small_dark)[company >= _FRECKLE_COUNT]] = "freckle"
    rows = zip(
        (xs + ox).tolist(),
        (ys + oy).tolist(),
        radii.tolist(),
        kind.tolist(),
        depth.tolist(),
        redness.tolist(),
        np.asarray(scores, np.float64).tolist(),
        visible.tolist(),
        strict=True,
    )
    return [Spot(x, y, r, k, d, c, sc) for x, y, r, k, d, c, sc, v in rows if v]


def removal_strength(spot: Spot, freckles: str, moles: bool) -> float:
    """Share of a spot that blemish removal takes away (before the user's strength)."""
    if freckles not in FRECKLE_MODES:
        raise ValueError(f"freckles must be one of {FRECKLE_MODES}, got {freckles!r}")
    if spot.kind == "freckle":
        return {"keep": 0.0, "reduce": 0.5, "remove": 1.0}[freckles]
    if spot.kind == "mole":
        return 1.0 if moles else 0.0
    return 1.0


@dataclass(frozen=True)
class Heal:
    """How one spot is healed, planned at working resolution.

    ``box`` ``(x0, y0, x1, y1)``: the window the fill touches; ``offset`` ``(dx, dy)``: where
    the texture comes from (``None``: no clean skin nearby, the fill is the low-frequency
    estimate alone); ``texture``: gain on the copied texture, matching its strength to the
    skin around the spot; ``background``: float32 ``(y1 - y0, x1 - x0, 3)``, the surroundings'
    low frequencies over the box; ``correction``: the same shape, so that the fill is
    ``texture * source + correction`` (``background`` plus the source's detail); ``amount``:
    share removed, in [0, 1].
    """

    spot: Spot
    box: tuple[int, int, int, int]
    offset: tuple[int, int] | None
    texture: float
    background: np.ndarray
    correction: np.ndarray
    amount: float


def hole_map(shape: tuple[int, int], spots: list[Spot]) -> np.ndarray:
    """1 where no spot's hole is, 0 inside every hole widened by a quarter (the pixels known
    to the fills), float32 with anti-aliased edges."""
    holes = np.zeros(shape, np.uint8)
    for s in spots:
        centre = (round(s.x * 16), round(s.y * 16))
        radius = round(_KNOWN_FROM * HOLE * s.radius * 16)
        cv2.circle(holes, centre, radius, 255, -1, lineType=cv2.LINE_AA, shift=4)
    return np.float32(1.0) - holes.astype(np.float32) * np.float32(1.0 / 255.0)


def fill_alpha(xx: np.ndarray, yy: np.ndarray, x: float, y: float, radius: float) -> np.ndarray:
    """Opacity of a spot's fill: 1 over the hole, a smooth fall to 0 at its feathered edge."""
    rh = HOLE * radius
    d = np.hypot(xx - x, yy - y)
    t = np.clip((d - rh) / ((_FEATHER - 1.0) * rh), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _clip_box(box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _extent(spot: Spot, w: int, h: int) -> tuple[tuple[int, ...], tuple[int, ...], float]:
    """A spot's box (the window its fill touches), area (where its texture sources and
    low-frequency estimate come from) and blur sigma, in working pixels."""
    rh = HOLE * spot.radius
    reach = math.ceil(_FEATHER * rh) + 1
    cx, cy = round(spot.x), round(spot.y)
    sigma = max(0.8, _BLUR * rh)
    far = reach + math.ceil(_REACH_OUT * rh) + math.ceil(3 * sigma) + 1
    box = _clip_box((cx - reach, cy - reach, cx + reach + 1, cy + reach + 1), w, h)
    area = _clip_box((cx - far, cy - far, cx + far + 1, cy + far + 1), w, h)
    return box, area, sigma


def _sources(
    spots: list[Spot], boxes: np.ndarray, areas: np.ndarray, holes: np.ndarray, unsure: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The texture sources of every spot at once: the offsets ``(n, 8, 2)`` of the candidate
    patches and whether each may serve (inside its area, clear of every hole, wholly in sure
    skin). ``holes``: rows ``x, y, radius`` of every hole, sorted by x; ``unsure``: the integral
    image of the pixels where the skin is unsure."""
    xs, ys, rh = np.array([(s.x, s.y, HOLE * s.radius) for s in spots]).T
    offsets = np.round(_DIRECTIONS[:, :2] * _DIRECTIONS[:, 2:] * rh[:, None, None]).astype(int)
    dx, dy = offsets[..., 0], offsets[..., 1]
    bx0, by0, bx1, by1 = (boxes[:, i : i + 1] for i in range(4))
    ok = (bx0 + dx >= areas[:, :1]) & (by0 + dy >= areas[:, 1:2])
    ok &= (bx1 + dx <= areas[:, 2:3]) & (by1 + dy <= areas[:, 3:])
    # Skin is sure where the integral counts no unsure pixel (corners of the patches left out
    # of the area are clipped: they do not count).
    h, w = unsure.shape[0] - 1, unsure.shape[1] - 1
    x0s, x1s = np.clip(bx0 + dx, 0, w), np.clip(bx1 + dx, 0, w)
    y0s, y1s = np.clip(by0 + dy, 0, h), np.clip(by1 + dy, 0, h)
    ok &= unsure[y1s, x1s] - unsure[y0s, x1s] - unsure[y1s, x0s] + unsure[y0s, x0s] == 0
    # Each spot tests the holes within reach of its candidates along x: one row per (spot,
    # hole) pair, a spot's pairs in a run; a candidate is clear where its run holds no hit.
    reach = (_REACH_OUT + _FEATHER) * rh + float(holes[:, 2].max()) + 1.0
    lo, hi = np.searchsorted(holes[:, 0], xs - reach), np.searchsorted(holes[:, 0], xs + reach)
    count = hi - lo
    ends = np.cumsum(count)
    spot = np.repeat(np.arange(xs.size), count)
    hole = holes[np.arange(ends[-1]) + np.repeat(lo - ends + count, count)]
    sx, sy = xs[spot, None] + dx[spot], ys[spot, None] + dy[spot]
    hit = np.hypot(hole[:, :1] - sx, hole[:, 1:2] - sy) < (_FEATHER * rh)[spot, None] + hole[:, 2:]
    hits = np.concatenate([np.zeros((1, hit.shape[1]), int), np.cumsum(hit, axis=0)])
    ok &= hits[ends] == hits[ends - count]
    return offsets, ok


def plan_heals(
    image: Float32Image, mask: Mask, spots: list[Spot], amounts: list[float]
) -> list[Heal]:
    """Healing plans for ``spots`` (with removal ``amounts``) in a float32 RGB image.

    The low-frequency estimate is a normalised Gaussian convolution over skin outside every
    spot's hole. The texture source is chosen among eight patches around the spot that lie in
    skin and clear of other spots: the one whose own low frequencies match the estimate best,
    pixel by pixel, and whose detail is about as strong as the skin around the hole (a patch
    with an edge or a highlight in it loses). Its detail is scaled down to the surroundings'
    strength where it is stronger. Which candidates may serve is found for every spot at once
    (whether a patch lies in skin is read from one integral image), and each spot's eight
    candidates are weighed at once.
    """
    todo = [(s, a) for s, a in zip(spots, amounts, strict=True) if a > 0]
    if not todo:
        return []
    h, w = image.shape[:2]
    extents = [_extent(spot, w, h) for spot, _ in todo]
    boxes = np.array([e[0] for e in extents])
    areas = np.array([e[1] for e in extents])
    holes = np.array([(s.x, s.y, HOLE * s.radius) for s in spots], np.float64)
    known = hole_map((h, w), spots) * mask
    # Pixels where the mask is under 0.9, counted over any box by four lookups.
    unsure = cv2.integral((mask < 0.9).view(np.uint8))
    offsets, usable = _sources(
        [s for s, _ in todo], boxes, areas, holes[np.argsort(holes[:, 0], kind="stable")], unsure
    )
    heals = []
    for (spot, amount), (box, area, sigma), moves, ok in zip(
        todo, extents, offsets, usable, strict=True
    ):
        bx0, by0, bx1, by1 = box
        ax0, ay0, ax1, ay1 = area
        low = cv2.GaussianBlur(image[ay0:ay1, ax0:ax1], (0, 0), sigma)
        # The estimate is needed over the box only: blurred over the box and the kernel's
        # reach around it (OpenCV's kernel spans 4 sigma), it is the same as over the image.
        k = math.ceil(4 * sigma) + 1
        ex0, ey0, ex1, ey1 = _clip_box((bx0 - k, by0 - k, bx1 + k, by1 + k), w, h)
        near = known[ey0:ey1, ex0:ex1]
        num = cv2.GaussianBlur(image[ey0:ey1, ex0:ex1] * near[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(near, (0, 0), sigma)
        at = (slice(by0 - ey0, by1 - ey0), slice(bx0 - ex0, bx1 - ex0))
        background = num[at] / np.maximum(den[at], 1e-4)[..., None]
        inner = (slice(by0 - ay0, by1 - ay0), slice(bx0 - ax0, bx1 - ax0))
        ring = known[by0:by1, bx0:bx1]
        ring_sum = max(float(ring.sum()), 1e-6)
        target = image[by0:by1, bx0:bx1]
        detail_all = image[ay0:ay1, ax0:ax1] - low
        target_energy = float((np.square(detail_all[inner]).sum(axis=2) * ring).sum()) / ring_sum
        best, texture = None, 0.0
        dx, dy = moves[ok, 0], moves[ok, 1]
        if dx.size:
            # The candidate windows, gathered as (n, bh, bw, ...) arrays.
            rows = (by0 - ay0 + dy)[:, None] + np.arange(by1 - by0)[None, :]
            cols = (bx0 - ax0 + dx)[:, None] + np.arange(bx1 - bx0)[None, :]
            detail = detail_all[rows[:, :, None], cols[:, None, :]]
            energy = np.einsum("nhwc,nhwc->n", detail, detail) / (ring.size)
            ratio = np.sqrt((energy + 1e-8) / (target_energy + 1e-8))
            gains = np.minimum(1.0, 1.0 / ratio).astype(np.float32)
            # How well each fill would continue the skin around the hole.
            fill = background + gains[:, None, None, None] * detail
            fill -= target
            costs = np.einsum("nhwc,nhwc,hw->n", fill, fill, ring)
            i = int(np.argmin(costs))
            best, texture = (int(dx[i]), int(dy[i])), float(gains[i])
        if best is None:
            correction = background
        else:
            src = (
                slice(by0 + best[1] - ay0, by1 + best[1] - ay0),
                slice(bx0 + best[0] - ax0, bx1 + best[0] - ax0),
            )
            correction = background - np.float32(texture) * low[src]
        heals.append(
            Heal(
                spot,
                box,
                best,
                texture,
                background.astype(np.float32),
                correction.astype(np.float32),
                amount,
            )
        )
    return heals


def _window(
    heal: Heal, scale: tuple[float, float], shape: tuple[int, int]
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The image window a heal touches at ``scale`` and its fill opacity (before strengths)."""
    fx, fy = scale
    h, w = shape
    bx0, by0, bx1, by1 = heal.box
    x0, y0 = max(0, math.floor(bx0 * fx)), max(0, math.floor(by0 * fy))
    x1, y1 = min(w, math.ceil(bx1 * fx)), min(h, math.ceil(by1 * fy))
    if x1 <= x0 or y1 <= y0:
        return None
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5) / fx - 0.5
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5) / fy - 0.5
    return (x0, y0, x1, y1), fill_alpha(xx, yy, heal.spot.x, heal.spot.y, heal.spot.radius)


def heal_mask(
    heals: list[Heal], shape: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0)
) -> Mask:
    """Where the heals act, ``(H, W)`` float32 in [0, 1], for an image of ``shape`` at ``scale``
    (pixels per working pixel); each fill counts with its ``amount``."""
    out = np.zeros(shape, np.float32)
    for heal in heals:
        win = _window(heal, scale, shape)
        if win is not None:
            (x0, y0, x1, y1), alpha = win
            np.maximum(out[y0:y1, x0:x1], alpha * np.float32(heal.amount), out=out[y0:y1, x0:x1])
    return out


def apply_heals(
    image: np.ndarray,
    heals: list[Heal],
    *,
    strength: float,
    mask: Mask,
    scale: tuple[float, float] = (1.0, 1.0),
) -> None:
    """Heal ``image`` (RGB, uint8 or float32, changed in place) with plans made at working
    resolution.

    ``image`` is the working image itself (``scale`` 1) or the same crop at full resolution,
    ``scale`` ``(fx, fy)`` pixels per working pixel. ``mask`` (working resolution) limits every
    fill, e.g. to skin. Each fill goes ``strength * amount * alpha`` of the way from the spot to
    the copied patch plus its low-frequency correction.
    """
    fx, fy = scale
    h, w = image.shape[:2]
    for heal in heals:
        win = _window(heal, scale, (h, w))
        if win is None:
            continue
        (x0, y0, x1, y1), alpha = win
        bx0, by0 = heal.box[:2]
        size = (x1 - x0, y1 - y0)
        alpha *= upsample_window(mask, scale, (x0, y0), size)
        alpha *= np.float32(strength * heal.amount)
        region = to_float32(image[y0:y1, x0:x1])
        fill = None
        if heal.offset is not None:
            dx, dy = round(heal.offset[0] * fx), round(heal.offset[1] * fy)
            if y0 + dy >= 0 and x0 + dx >= 0 and y1 + dy <= h and x1 + dx <= w:
                source = to_float32(image[y0 + dy : y1 + dy, x0 + dx : x1 + dx])
                fill = source * np.float32(heal.texture)
                fill += upsample_window(heal.correction, scale, (x0, y0), size, (bx0, by0))
        if fill is None:  # no texture source (or none at this scale): the smooth estimate
            fill = upsample_window(heal.background, scale, (x0, y0), size, (bx0, by0))
        region += alpha[..., None] * (fill - region)
        image[y0:y1, x0:x1] = from_float32(region, image.dtype)


__all__ = [
    "FRECKLE_MODES",
    "Heal",
    "Spot",
    "apply_heals",
    "detect_spots",
    "fill_alpha",
    "heal_mask",
    "hole_map",
    "plan_heals",
    "removal_strength",
]
