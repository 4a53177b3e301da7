"""Synthetic skin defects on clean faces: training pairs for ABPN and the defect benchmark.

Learned local retouching (T. Lei et al., "ABPN: Adaptive Blend Pyramid Network for Real-Time
Local Retouching of Ultra High-Resolution Photo", CVPR 2022) needs pairs of a blemished face
and its clean version. Here the clean face is the real photo and the blemishes are drawn into
it, confined to skin (a soft skin mask from :func:`meiyan.skin_mask`): spots 1-15 px across
with a Gaussian, flat-topped or ring profile at 30-90% opacity, red, brown, dark or pale; acne
clusters (red spots over a faint redness); moles (very dark, crisp, kept in the target unless
their removal is asked for); redness patches; blotches; uneven tone; under-eye darkness. The
target is the clean face, so its pores and fine texture are what the network must keep.

Everything random is drawn from the generator passed in: the same seed gives the same
defects. ``bench/retouch_defects.py`` uses this generator with another seed and other faces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("spot", "acne", "mole", "redness", "blotch", "uneven", "undereye")
"""Every defect type; ``mole`` is kept in the target unless removal is asked for."""
LOCAL = ("spot", "acne", "mole")
"""Small defects: the blemish stage's (the network's blemish mask marks them)."""
PROFILES = ("gaussian", "flat", "ring")
COLOURS = ("red", "brown", "dark", "pale")

# Multiplicative tint at full opacity, RGB: haemoglobin falls green and blue, melanin blue most.
_TINT = {
    "red": (0.93, 0.62, 0.66),
    "brown": (0.72, 0.56, 0.46),
    "dark": (0.55, 0.5, 0.48),
    "mole": (0.3, 0.22, 0.18),
    "undereye": (0.78, 0.7, 0.76),
}
_PALE = (1.18, 1.16, 1.15)  # a pale (hypopigmented) spot lightens, red least
_MIN_SKIN = 0.6  # defects are centred where the skin mask is at least this


@dataclass(frozen=True)
class Defect:
    """One drawn defect: its kind, centre and radius in pixels, and its colour."""

    kind: str
    x: float
    y: float
    radius: float
    colour: str


@dataclass
class FaceSample:
    """A clean face ready for defects: RGB float32 in [0, 1], its soft skin mask and the
    under-eye ellipses ``(cx, cy, rx, ry)`` (none when no face was found)."""

    image: np.ndarray
    skin: np.ndarray
    under_eyes: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class Defected:
    """A blemished face and what was done to it (all ``(H, W)`` maps float32 in [0, 1]).

    ``image``: the face with defects; ``target``: the clean face (with the moles unless
    ``moles_removed``); ``blemish``: opacity of the small defects to remove (spots, acne and,
    when asked, moles); ``tone``: opacity of the diffuse ones; ``moles``: opacity of the moles.
    """

    image: np.ndarray
    target: np.ndarray
    blemish: np.ndarray
    tone: np.ndarray
    moles: np.ndarray
    defects: list[Defect]
    moles_removed: bool


def under_eye_ellipses(landmarks: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Ellipses ``(cx, cy, rx, ry)`` just below each eye, from MediaPipe face-mesh points
    (eye corners 33/133 and 362/263, lower lids 145 and 374)."""
    out = []
    for a, b, lid in ((33, 133, 145), (362, 263, 374)):
        p, q, low = landmarks[a], landmarks[b], landmarks[lid]
        width = float(np.hypot(*(q - p)))
        cx = float((p[0] + q[0]) / 2)
        out.append((cx, float(low[1]) + 0.3 * width, 0.55 * width, 0.22 * width))
    return out


def prepare(image: np.ndarray, method: str = "classic") -> FaceSample:
    """A :class:`FaceSample` of an RGB uint8 photo: its skin mask (``method``, from the faces
    that :func:`meiyan.analyze` finds) and the under-eye areas of its largest face."""
    import meiyan

    faces = meiyan.analyze(image)
    skin = meiyan.skin_mask(image, method, faces=faces) if faces else None
    if skin is None:
        skin = np.zeros(image.shape[:2], np.float32)
    eyes = under_eye_ellipses(max(faces, key=lambda f: f.size).landmarks) if faces else []
    return FaceSample(image.astype(np.float32) / 255.0, skin, eyes)


def _random_field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in about [-1, 1]: Gaussian noise on a coarse grid, upsampled."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / 1.5, -1.5, 1.5)


def _profile(rho: np.ndarray, radius: float, kind: str) -> np.ndarray:
    """Opacity (peak 1) of a round spot at distance ``rho`` from its centre."""
    if kind == "gaussian":
        return np.exp(-0.5 * (rho / max(0.5, 0.6 * radius)) ** 2)
    if kind == "flat":
        return 1.0 / (1.0 + (rho / max(0.5, radius)) ** 6)
    ring_w = max(0.5, 0.35 * radius)
    ring = np.exp(-0.5 * ((rho - 0.7 * radius) / ring_w) ** 2)
    return np.maximum(ring, 0.45 * np.exp(-0.5 * (rho / max(0.5, 0.5 * radius)) ** 2))


class _Canvas:
    """Accumulates multiplicative defect layers and their opacity maps."""

    def __init__(self, sample: FaceSample) -> None:
        h, w = sample.skin.shape
        self.shape = (h, w)
        self.skin = sample.skin.astype(np.float32)
        self.factor = np.ones((h, w, 3), np.float32)
        self.mole_factor = np.ones((h, w, 3), np.float32)
        self.blemish = np.zeros((h, w), np.float32)
        self.tone = np.zeros((h, w), np.float32)
        self.moles = np.zeros((h, w), np.float32)
        ok = self.skin >= _MIN_SKIN
        k = np.ones((5, 5), np.uint8)
        self.ys, self.xs = np.nonzero(cv2.erode(ok.astype(np.uint8), k) > 0)

    def centre(self, rng: np.random.Generator) -> tuple[float, float] | None:
        if self.xs.size == 0:
            return None
        i = rng.integers(self.xs.size)
        return float(self.xs[i] + rng.uniform(-0.5, 0.5)), float(
            self.ys[i] + rng.uniform(-0.5, 0.5)
        )

    def stamp(
        self, x: float, y: float, radius: float, profile: str, opacity: float, tint, kind: str
    ) -> None:
        """Multiply a round spot into the layer (``kind``: which opacity map records it)."""
        h, w = self.shape
        reach = math.ceil(2.5 * radius + 2)
        x0, x1 = max(0, int(x) - reach), min(w, int(x) + reach + 2)
        y0, y1 = max(0, int(y) - reach), min(h, int(y) + reach + 2)
        if x0 >= x1 or y0 >= y1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        a = _profile(np.hypot(xx - x, yy - y), radius, profile) * opacity * self.skin[y0:y1, x0:x1]
        layer = 1.0 - a[..., None] * (1.0 - np.asarray(tint, np.float32))
        target = self.mole_factor if kind == "mole" else self.factor
        target[y0:y1, x0:x1] *= layer
        record = {"mole": self.moles, "tone": self.tone}.get(kind, self.blemish)
        np.maximum(
            record[y0:y1, x0:x1], np.minimum(1.0, a / max(opacity, 1e-3)), out=record[y0:y1, x0:x1]
        )

    def window(
        self, x: float, y: float, reach: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        """Rows, columns and pixel coordinates of the box within ``reach`` of ``(x, y)``."""
        h, w = self.shape
        y0 = min(h, max(0, math.floor(y - reach)))
        x0 = min(w, max(0, math.floor(x - reach)))
        y1, x1 = (
            max(y0, min(h, math.ceil(y + reach) + 1)),
            max(x0, min(w, math.ceil(x + reach) + 1)),
        )
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        return slice(y0, y1), slice(x0, x1), xx, yy

    def wash(
        self, alpha: np.ndarray, tint, rows: slice = slice(None), cols: slice = slice(None)
    ) -> None:
        """Multiply a diffuse tint at opacity ``alpha`` into the skin of ``[rows, cols]``."""
        a = alpha * self.skin[rows, cols]
        self.factor[rows, cols] *= 1.0 - a[..., None] * (1.0 - np.asarray(tint, np.float32))
        tone = self.tone[rows, cols]
        np.maximum(tone, np.clip(a * 4.0, 0.0, 1.0), out=tone)


def _spot(c: _Canvas, rng: np.random.Generator, out: list[Defect]) -> None:
    xy = c.centre(rng)
    if xy is None:
        return
    radius = float(rng.uniform(0.5, 7.5))  # 1-15 px across
    colour = COLOURS[rng.integers(len(COLOURS))]
    profile = PROFILES[rng.integers(len(PROFILES))]
    tint = _PALE if colour == "pale" else _TINT[colour]
    c.stamp(*xy, radius, profile, float(rng.uniform(0.3, 0.9)), tint, "blemish")
    out.append(Defect("spot", *xy, radius, colour))


def _acne(c: _Canvas, rng: np.random.Generator, out: list[Defect]) -> None:
    xy = c.centre(rng)
    if xy is None:
        return
    spread = float(rng.uniform(10.0, 28.0))
    h, w = c.shape
    rows, cols, xx, yy = c.window(*xy, 3.0 * spread)
    halo = np.exp(-0.5 * ((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / spread**2)
    c.wash(halo * float(rng.uniform(0.1, 0.25)), _TINT["red"], rows, cols)
    for _ in range(int(rng.integers(3, 9))):
        x = xy[0] + float(rng.normal(0, 0.6 * spread))
        y = xy[1] + float(rng.normal(0, 0.6 * spread))
        if not (0 <= x < w and 0 <= y < h) or c.skin[int(y), int(x)] < _MIN_SKIN:
            continue
        radius = float(rng.uniform(1.0, 4.5))
        profile = ("gaussian", "ring")[rng.integers(2)]
        c.stamp(x, y, radius, profile, float(rng.uniform(0.4, 0.9)), _TINT["red"], "blemish")
        out.append(Defect("acne", x, y, radius, "red"))


def _mole(c: _Canvas, rng: np.random.Generator, out: list[Defect]) -> None:
    xy = c.centre(rng)
    if xy is None:
        return
    radius = float(rng.uniform(1.5, 4.5))
    c.stamp(*xy, radius, "flat", float(rng.uniform(0.85, 1.0)), _TINT["mole"], "mole")
    out.append(Defect("mole", *xy, radius, "mole"))


def _patch(c: _Canvas, rng: np.random.Generator, out: list[Defect], kind: str) -> None:
    """A redness patch (one soft, noisy blob) or a blotch (irregular, red or brown)."""
    xy = c.centre(rng)
    if xy is None:
        return
    size = float(rng.uniform(12.0, 40.0))
    rows, cols, xx, yy = c.window(*xy, 3.5 * size)
    d2 = ((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / size**2
    noise = _random_field(xx.shape, 10, rng)
    if kind == "redness":
        alpha = np.exp(-0.5 * d2) * (1.0 + 0.3 * noise)
        tint, opacity, colour = _TINT["red"], float(rng.uniform(0.2, 0.45)), "red"
    else:
        alpha = np.clip((1.0 - d2 / 2.0) + 0.6 * noise, 0.0, 1.0) * np.exp(-0.25 * d2)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
        colour = ("red", "brown")[rng.integers(2)]
        tint, opacity = _TINT[colour], float(rng.uniform(0.2, 0.45))
    c.wash(np.clip(alpha, 0.0, 1.0) * opacity, tint, rows, cols)
    out.append(Defect(kind, *xy, size, colour))


def _uneven(c: _Canvas, rng: np.random.Generator, out: list[Defect]) -> None:
    h, w = c.shape
    amount = float(rng.uniform(0.04, 0.1))
    for ch, share in enumerate((0.6, 1.0, 0.9)):
        c.factor[..., ch] *= 1.0 + amount * share * _random_field((h, w), 6, rng) * c.skin
    np.maximum(c.tone, c.skin, out=c.tone)
    out.append(Defect("uneven", w / 2, h / 2, max(h, w) / 2, "mixed"))


def _undereye(c: _Canvas, rng: np.random.Generator, out: list[Defect], ellipses) -> None:
    opacity = float(rng.uniform(0.25, 0.55))
    for cx, cy, rx, ry in ellipses:
        rows, cols, xx, yy = c.window(cx, cy, 2.0 * rx)
        d2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        c.wash(np.exp(-1.5 * d2) * opacity, _TINT["undereye"], rows, cols)
        out.append(Defect("undereye", cx, cy, rx, "dark"))


DEFAULT_COUNTS: dict[str, tuple[int, int]] = {
    "spot": (3, 16),
    "acne": (0, 2),
    "mole": (0, 2),
    "redness": (0, 2),
    "blotch": (0, 2),
    "uneven": (0, 2),
    "undereye": (0, 2),
}
"""Training mix: a number of each kind drawn from ``[low, high)``."""


def synthesize(
    sample: FaceSample,
    rng: np.random.Generator,
    counts: dict[str, tuple[int, int]] | None = None,
    *,
    kinds: Sequence[str] | None = None,
    moles_removed: bool = False,
) -> Defected:
    """Draw defects into ``sample``'s skin; ``counts`` (default :data:`DEFAULT_COUNTS`) gives
    how many of each kind, ``kinds`` keeps only some kinds; ``moles_removed`` takes the moles
    out of the target (and marks them as blemishes)."""
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = sorted(set(counts) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown defect kind(s) {unknown}; choose from {KINDS}")
    if kinds is not None:
        counts = {k: v for k, v in counts.items() if k in kinds}
    c = _Canvas(sample)
    defects: list[Defect] = []
    for kind in KINDS:
        if kind not in counts:
            continue
        low, high = counts[kind]
        n = int(rng.integers(low, high)) if high > low else low
        for _ in range(n):
            if kind == "spot":
                _spot(c, rng, defects)
            elif kind == "acne":
                _acne(c, rng, defects)
            elif kind == "mole":
                _mole(c, rng, defects)
            elif kind in ("redness", "blotch"):
                _patch(c, rng, defects, kind)
            elif kind == "uneven":
                _uneven(c, rng, defects)
            elif sample.under_eyes:
                _undereye(c, rng, defects, sample.under_eyes)
    clean = sample.image
    moles = np.clip(clean * c.mole_factor, 0.0, 1.0)
    image = np.clip(moles * c.factor, 0.0, 1.0).astype(np.float32)
    target = clean if moles_removed else moles
    blemish = np.maximum(c.blemish, c.moles) if moles_removed else c.blemish
    return Defected(
        image, target.astype(np.float32), blemish, c.tone, c.moles, defects, moles_removed
    )


__all__ = [
    "COLOURS",
    "DEFAULT_COUNTS",
    "KINDS",
    "LOCAL",
    "PROFILES",
    "Defect",
    "Defected",
    "FaceSample",
    "prepare",
    "synthesize",
    "under_eye_ellipses",
]
