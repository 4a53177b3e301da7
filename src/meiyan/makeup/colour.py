"""CIE Lab conversion and colour statistics shared by the makeup layers and the transfer.

Lab (CIE 1976 L*a*b*, D65 white, sRGB primaries and transfer curve, as OpenCV's ``RGB2Lab``
computes it) is the working space: L in [0, 100], a and b roughly in [-128, 127]; Euclidean
distances in it approximate perceived colour differences.
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask
from meiyan.makeup.roi import support

# Gaussian width of :func:`belonging`, in typical (median) distances to the region's colour.
_BELONGING_WIDTH = 3.0
# Bins of the weighted median's histogram (see :func:`_median_1d`).
_MEDIAN_BINS = 4096


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


def _median_1d(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted median of 1-D ``values``: the smallest value whose cumulative weight, in
    ascending order of value, reaches half the total.

    A histogram of the weights over :data:`_MEDIAN_BINS` equal bins finds the bin where half
    the weight is reached (the bin index grows with the value), and only that bin's values are
    sorted: the same value as sorting them all, in a fraction of the time.
    """
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    idx = ((values - lo) * (_MEDIAN_BINS / (hi - lo))).astype(np.intp)
    np.minimum(idx, _MEDIAN_BINS - 1, out=idx)
    cum = np.cumsum(np.bincount(idx, weights=weights, minlength=_MEDIAN_BINS))
    half = 0.5 * cum[-1]
    k = min(int(np.searchsorted(cum, half)), _MEDIAN_BINS - 1)
    in_bin = idx == k
    vals = values[in_bin]
    order = np.argsort(vals, kind="stable")
    below = cum[k - 1] if k > 0 else 0.0
    running = below + np.cumsum(weights[in_bin][order])
    return float(vals[order[min(int(np.searchsorted(running, half)), len(order) - 1)]])


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-column weighted median of ``(N, C)`` values with ``(N,)`` weights."""
    return np.array([_median_1d(values[:, c], weights) for c in range(values.shape[1])])


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
    out = np.zeros(mask.shape, np.float32)
    box = support(mask)
    if box is None:
        return out
    # The mask's box only, and the channels apart: (N, 3) arithmetic is slow in NumPy.
    weights = mask[box]
    sel = weights > 0
    px = lab[box][sel]
    chans = [px[:, c].astype(np.float64) for c in range(3)]
    chans[0] *= lightness_weight
    w = weights[sel].astype(np.float64)
    centre = [_median_1d(ch, w) for ch in chans]
    d = [ch - m for ch, m in zip(chans, centre, strict=True)]
    dist = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    width = _BELONGING_WIDTH * max(_median_1d(dist, w), min_spread)
    out[box][sel] = np.exp(-0.5 * (dist / width) ** 2)
    return out
