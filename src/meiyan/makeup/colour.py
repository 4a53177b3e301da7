"""CIE Lab conversion and colour statistics shared by the makeup layers and the transfer.

Lab (CIE 1976 L*a*b*, D65 white, sRGB primaries and transfer curve, as OpenCV's ``RGB2Lab``
computes it) is the working space: L in [0, 100], a and b roughly in [-128, 127]; Euclidean
distances in it approximate perceived colour differences.
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask

# Gaussian width of :func:`belonging`, in typical (median) distances to the region's colour.
_BELONGING_WIDTH = 3.0


def rgb_to_lab(rgb: Float32Image) -> np.ndarray:
    """``(H, W, 3)`` float32 sRGB in [0, 1] -> float32 Lab."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> Float32Image:
    """float32 Lab -> ``(H, W, 3)`` float32 sRGB, clipped to [0, 1]."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0)


def hex_to_lab(colour: str) -> np.ndarray:
    """``"#rrggbb"`` -> ``(3,)`` float32 Lab."""
    text = colour.strip().removeprefix("#")
    if len(text) != 6:
        raise ValueError(f"colour must be '#rrggbb', got {colour!r}")
    try:
        rgb = np.array([int(text[i : i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0
    except ValueError:
        raise ValueError(f"colour must be '#rrggbb', got {colour!r}") from None
    return rgb_to_lab(rgb.reshape(1, 1, 3)).reshape(3)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-column weighted median of ``(N, C)`` values with ``(N,)`` weights."""
    out = np.empty(values.shape[1], np.float64)
    for c in range(values.shape[1]):
        order = np.argsort(values[:, c], kind="stable")
        cum = np.cumsum(weights[order], dtype=np.float64)
        out[c] = values[order[min(np.searchsorted(cum, 0.5 * cum[-1]), len(order) - 1)], c]
    return out


def belonging(
    lab: np.ndarray, mask: Mask, min_spread: float = 2.0, lightness_weight: float = 0.5
) -> Mask:
    """How much each pixel of ``mask`` looks like the region's own colour, in [0, 1].

    A Gaussian of the pixel's Lab distance to the region's weighted median colour, its width
    three times the weighted median of those distances (at least ``min_spread``): a robust
    outlier weight, so hair or a hand across a skin region gets a weight near 0 while freckles
    and shading keep most of theirs, without any colour model of skin. Lightness counts with
    ``lightness_weight`` in the distance, since shading changes mostly lightness. Pixels outside
    ``mask`` get 0.
    """
    sel = mask > 0
    out = np.zeros(mask.shape, np.float32)
    if not sel.any():
        return out
    px = lab[sel].astype(np.float64) * (lightness_weight, 1.0, 1.0)
    w = mask[sel].astype(np.float64)
    centre = weighted_median(px, w)
    dist = np.sqrt(((px - centre) ** 2).sum(axis=1))
    width = _BELONGING_WIDTH * max(weighted_median(dist[:, None], w)[0], min_spread)
    out[sel] = np.exp(-0.5 * (dist / width) ** 2)
    return out
