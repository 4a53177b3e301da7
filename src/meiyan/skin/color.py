"""Colour-space skin rules: the baseline skin detectors.

Each rule is a box (or set of inequalities) in one colour space. Hard thresholds make ragged
masks, so every inequality is softened into a linear ramp of width ``softness`` and the product of
the ramps is feathered with a Gaussian, giving a soft mask in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask, to_float32


def _above(x: np.ndarray, t: float, soft: float) -> np.ndarray:
    """Soft ``x > t``: 0 below ``t - soft/2``, 1 above ``t + soft/2``."""
    return np.clip((x - t) / soft + 0.5, 0.0, 1.0)


def _below(x: np.ndarray, t: float, soft: float) -> np.ndarray:
    return _above(-x, -t, soft)


def _between(x: np.ndarray, lo: float, hi: float, soft: float) -> np.ndarray:
    return _above(x, lo, soft) * _below(x, hi, soft)


def _feather(mask: np.ndarray, feather: float) -> Mask:
    mask = mask.astype(np.float32, copy=False)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather)
    return np.clip(mask, 0.0, 1.0)


def ycrcb_mask(image: np.ndarray, *, softness: float = 6.0, feather: float = 1.5) -> Mask:
    """Skin by the YCrCb box of Chai and Ngan (1999): 133 <= Cr <= 173, 77 <= Cb <= 127.

    D. Chai and K. N. Ngan, "Face segmentation using skin-color map in videophone
    applications", IEEE TCSVT 9(4), 1999. Thresholds are on the 8-bit scale.
    """
    x = to_float32(image)
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb) * 255.0
    cr, cb = ycc[..., 1], ycc[..., 2]
    return _feather(_between(cr, 133, 173, softness) * _between(cb, 77, 127, softness), feather)


def hsv_mask(image: np.ndarray, *, softness: float = 0.04, feather: float = 1.5) -> Mask:
    """Skin by an HSV box: hue 0-50 degrees, saturation 0.23-0.68, value above 0.35.

    Hue and saturation bounds after K. Sobottka and I. Pitas, "A novel method for automatic face
    segmentation, facial feature extraction and tracking", Signal Processing: Image
    Communication 12(3), 1998; the value floor rejects dark hair and shadows.
    """
    x = to_float32(image)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # H in degrees, S and V in [0, 1]
    h = hsv[..., 0] / 360.0
    hue = np.maximum(_below(h, 50 / 360, softness), _above(h, 340 / 360, softness))
    m = hue * _between(hsv[..., 1], 0.23, 0.68, softness) * _above(hsv[..., 2], 0.35, softness)
    return _feather(m, feather)


def rgb_mask(image: np.ndarray, *, softness: float = 6.0, feather: float = 1.5) -> Mask:
    """Skin by the uniform-daylight RGB rule of Kovac, Peer and Solina (2003).

    R > 95, G > 40, B > 20, max - min > 15, |R - G| > 15, R > G, R > B (8-bit scale).
    J. Kovac, P. Peer and F. Solina, "Human skin colour clustering for face detection",
    EUROCON 2003.
    """
    x = to_float32(image) * 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    spread = x.max(axis=2) - x.min(axis=2)
    m = (
        _above(r, 95, softness)
        * _above(g, 40, softness)
        * _above(b, 20, softness)
        * _above(spread, 15, softness)
        * _above(np.abs(r - g), 15, softness)
        * _above(r - g, 0, softness)
        * _above(r - b, 0, softness)
    )
    return _feather(m, feather)


def color_mask(image: np.ndarray, *, rule: str = "ycrcb") -> Mask:
    """Skin mask from one of the colour rules: ``"ycrcb"`` (default), ``"hsv"`` or ``"rgb"``."""
    rules = {"ycrcb": ycrcb_mask, "hsv": hsv_mask, "rgb": rgb_mask}
    if rule not in rules:
        raise ValueError(f"unknown colour rule {rule!r}; choose one of {sorted(rules)}")
    return rules[rule](image)


__all__ = ["Float32Image", "color_mask", "hsv_mask", "rgb_mask", "ycrcb_mask"]
