"""Virtual makeup layers: lipstick, blush, eyeshadow, eyeliner, brow tint and foundation.

Each layer is a small frozen record (its colour as ``"#rrggbb"`` and its strength in [0, 1])
that paints itself onto the CIE Lab window of one face through that face's soft region masks.
Painting follows the cosmetics-rendering practice of colour replacement that keeps the skin's
own texture: the layer's colour replaces the region's mean chroma while the pixel-to-pixel
variation (pores, lip lines, highlights, shading) rides on top, then the result is blended in
by the soft mask times the strength (T. Porter and T. Duff, "Compositing digital images",
SIGGRAPH 1984: ``out = src + alpha (layer - src)``). Lipstick finishes follow the dichromatic
reflection model (S. A. Shafer, "Using color to separate reflection components", Color
Research & Application 10(4), 1985): gloss strengthens the specular highlights (bright, low
chroma), matte damps them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from meiyan._array import Mask
from meiyan.face.regions import FaceFrame
from meiyan.makeup.colour import belonging, hex_to_lab
from meiyan.makeup.roi import Box, blur_blocks, blur_box, blur_mask, grow, inner, reach, support

FINISHES = ("matte", "gloss")


@dataclass(frozen=True)
class Canvas:
    """What a layer paints through: one face's soft and hard masks (see
    :func:`meiyan.makeup.regions.makeup_masks`) and its frame."""

    soft: dict[str, Mask]
    hard: dict[str, Mask]
    frame: FaceFrame


def _mean(lab: np.ndarray, weights: Mask) -> np.ndarray:
    """Weighted mean Lab colour; the products are summed over the weights' box only (in the
    same order, so to the same value: NumPy adds up an ``(N, 3)`` column one row after the
    other, and the zeros outside add nothing)."""
    total = float(weights.sum())
    box = support(weights)
    if total <= 0 or box is None:
        return np.zeros(3, np.float32)
    return (lab[box] * weights[box][..., None]).reshape(-1, 3).sum(axis=0) / total


def _recolour(
    lab: np.ndarray, target: np.ndarray, mean: np.ndarray, light: float, chroma_keep: float
) -> np.ndarray:
    """``lab`` moved to ``target`` colour: lightness shifted by ``light`` of the mean's gap,
    chroma set to the target's plus ``chroma_keep`` of each pixel's own deviation."""
    l, a, b = cv2.split(lab)  # channels apart: strided (H, W, 3) arithmetic is slow in NumPy
    t, m, keep = target.astype(np.float32), mean.astype(np.float32), np.float32(chroma_keep)
    return cv2.merge(
        [l + np.float32(light) * (t[0] - m[0]), (a - m[1]) * keep + t[1], (b - m[2]) * keep + t[2]]
    )


def _blend(lab: np.ndarray, layer: np.ndarray, alpha: Mask) -> np.ndarray:
    return lab + alpha[..., None] * (layer - lab)


def _painted(lab: np.ndarray, box: Box, part: np.ndarray) -> np.ndarray:
    """``lab`` with its ``box`` replaced by ``part``: a layer changes nothing outside the box
    of its mask, where its alpha is 0."""
    out = lab.copy()
    out[box] = part
    return out


def _recoloured(
    lab: np.ndarray, canvas: Canvas, name: str, target: np.ndarray, light: float, chroma: float
) -> tuple[Box, np.ndarray, np.ndarray] | None:
    """Where the soft mask ``name`` reaches: its box, ``lab`` there, and that moved to
    ``target`` (see :func:`_recolour`) about the mean over the hard mask ``name``; ``None``
    where the soft mask is empty (the layer changes nothing)."""
    box = support(canvas.soft[name])
    if box is None:
        return None
    part = lab[box]
    mean = _mean(lab, canvas.hard[name])
    return box, part, _recolour(part, target, mean, light=light, chroma_keep=chroma)


def _check_strength(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class Layer(ABC):
    """Base of every layer: ``color`` ``"#rrggbb"``, ``strength`` in [0, 1]; ``region`` is the
    user-facing region (of :data:`meiyan.makeup.regions.REGION_NAMES`) it belongs to."""

    region: ClassVar[str]
    color: str
    strength: float = 0.5
    _lab: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_strength(f"{type(self).__name__.lower()} strength", self.strength)
        object.__setattr__(self, "_lab", hex_to_lab(self.color))

    @abstractmethod
    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        """``lab`` with this layer at ``amount`` (the region's shade) times its strength."""


@dataclass(frozen=True)
class Lipstick(Layer):
    """Lip colour over the lips (never the teeth): ``finish`` ``"gloss"`` or ``"matte"``."""

    region: ClassVar[str] = "lips"
    color: str = "#b3263c"
    strength: float = 0.6
    finish: str = "gloss"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finish not in FINISHES:
            raise ValueError(f"finish must be one of {FINISHES}, got {self.finish!r}")

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        painted = _recoloured(lab, canvas, "lips", self._lab, 1.0, 0.25)
        if painted is None:
            return lab.copy()
        box, part, layer = painted
        # Specular highlights: lightness above the lips' local mean (dichromatic model).
        local = blur_box(lab[..., 0], max(0.04 * canvas.frame.scale, 0.5), box)
        spec = np.maximum(part[..., 0] - local, 0.0)
        if self.finish == "gloss":
            boost = 1.5 * spec
            layer[..., 0] += boost
            layer[..., 1:] *= (1.0 - np.clip(boost / 25.0, 0.0, 0.6))[..., None]
        else:  # matte: highlights damped, texture flattened
            layer[..., 0] -= 0.7 * spec
        alpha = canvas.soft["lips"][box] * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


@dataclass(frozen=True)
class Blush(Layer):
    """Colour on the cheek apples, fading out over the cheeks."""

    region: ClassVar[str] = "blush"
    color: str = "#e8808a"
    strength: float = 0.3

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        painted = _recoloured(lab, canvas, "blush", self._lab, 0.3, 1.0)
        if painted is None:
            return lab.copy()
        box, part, layer = painted
        # Densest on the apple: the patch blurred to a blob, peak 1.
        blob = blur_mask(canvas.hard["blush"], max(0.15 * canvas.frame.scale, 0.5), blocks=True)
        density = blob[box] / max(float(blob.max()), 1e-6)
        alpha = canvas.soft["blush"][box] * density * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


@dataclass(frozen=True)
class Eyeshadow(Layer):
    """Colour on the lids up to the brows, densest at the lash line."""

    region: ClassVar[str] = "eyes"
    color: str = "#8c6a5c"
    strength: float = 0.4

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        painted = _recoloured(lab, canvas, "eye_shadow", self._lab, 0.8, 0.5)
        if painted is None:
            return lab.copy()
        box, part, layer = painted
        # Density falls off with the distance from the eye opening.
        outside = (canvas.hard["eye_openings"] < 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)[box]
        density = np.exp(-dist / (0.25 * canvas.frame.scale)).astype(np.float32)
        alpha = canvas.soft["eye_shadow"][box] * density * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


@dataclass(frozen=True)
class Eyeliner(Layer):
    """A line along the upper lashes with a short wing."""

    region: ClassVar[str] = "eyes"
    color: str = "#1c1616"
    strength: float = 0.6

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        painted = _recoloured(lab, canvas, "eyeliner", self._lab, 1.0, 0.2)
        if painted is None:
            return lab.copy()
        box, part, layer = painted
        alpha = canvas.soft["eyeliner"][box] * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


@dataclass(frozen=True)
class BrowTint(Layer):
    """Brow colour, on the hairs more than on the skin between them."""

    region: ClassVar[str] = "brows"
    color: str = "#3e2c22"
    strength: float = 0.4

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        painted = _recoloured(lab, canvas, "brows", self._lab, 0.8, 0.5)
        if painted is None:
            return lab.copy()
        box, part, layer = painted
        skin_L = _mean(lab, canvas.hard["eye_shadow"])[0]
        # Hairs are darker than the lid skin below: full tint 15 L* below it, a third on skin.
        hair = np.clip((skin_L - part[..., 0]) / 15.0, 1.0 / 3.0, 1.0)
        alpha = canvas.soft["brows"][box] * hair * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


@dataclass(frozen=True)
class Foundation(Layer):
    """Even skin tone: the skin's blotchy low-frequency chroma replaced by one tone.

    ``color``: the foundation's shade; empty (``""``) takes the person's own median skin
    colour, which evens the tone without changing it. Shading (the face's relief) is kept.
    """

    region: ClassVar[str] = "skin"
    color: str = ""
    strength: float = 0.5

    def __post_init__(self) -> None:
        _check_strength("foundation strength", self.strength)
        object.__setattr__(self, "_lab", hex_to_lab(self.color) if self.color else None)

    def paint(self, lab: np.ndarray, canvas: Canvas, amount: float) -> np.ndarray:
        box = support(canvas.soft["skin"])
        if box is None:
            return lab.copy()
        core = canvas.hard["skin_core"]
        own = belonging(lab, core)
        mean = _mean(lab, core * own)
        target = mean if self._lab is None else self._lab
        sigma = max(0.15 * canvas.frame.scale, 0.5)
        likeness = belonging(lab, canvas.hard["skin"])  # hair across the face is not skin
        skin = canvas.hard["skin"] * likeness
        # Local mean chroma by normalised convolution over skin only: chroma times skin and
        # skin itself blurred as the channels of one image, read within the blur's reach.
        # (Channels apart: strided (H, W, 3) arithmetic is slow in NumPy.)
        near = grow(box, reach(sigma), skin.shape)
        weight = np.ascontiguousarray(skin[near])
        _, a, b = cv2.split(lab[near])
        weighted = cv2.merge([a * weight, b * weight, weight])
        # That local mean is a smooth field (sigma is a sixth of the face): on block means.
        sum_a, sum_b, total = cv2.split(blur_blocks(weighted, sigma, inner(box, near)))
        total = np.maximum(total, np.float32(1e-3))
        part = lab[box]
        lp, ap, bp = cv2.split(part)
        t = target.astype(np.float32)
        layer = cv2.merge(
            [
                lp + (t[0] - np.float32(mean[0])),
                ap + (t[1] - sum_a / total),
                bp + (t[2] - sum_b / total),
            ]
        )
        keep = blur_box(likeness, max(0.02 * canvas.frame.scale, 0.5), box)
        alpha = canvas.soft["skin"][box] * keep * (self.strength * amount)
        return _painted(lab, box, _blend(part, layer, alpha))


LAYER_TYPES: dict[str, type[Layer]] = {
    "foundation": Foundation,
    "blush": Blush,
    "eyeshadow": Eyeshadow,
    "eyeliner": Eyeliner,
    "brows": BrowTint,
    "lipstick": Lipstick,
}
"""Layer kinds by their name in looks data, in painting order (bottom to top)."""
