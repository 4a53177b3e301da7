"""Weighted window averages accumulated one offset at a time, in row strips.

Used by the filters whose weight depends on the per-channel difference between a neighbour and the
centre pixel (surface blur, smart blur). For each offset ``(dy, dx)`` of the ``(2r+1)^2`` window the
whole strip is shifted at once, so no ``(H, W, window)`` stack is ever built: memory stays at a
few strip-sized buffers and every pass runs on data that fits in cache.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

_STRIP_ELEMENTS = 1 << 16
"""Values per strip buffer (256 kB of float32, so the working set stays in cache); of 2**15,
2**16 and 2**17 this was fastest at 1080p and 4K widths on a busy shared machine."""

WeightFn = Callable[[np.ndarray, int, int], None]
"""``weigh(d, dy, dx)`` overwrites ``d`` (``|I(x + (dy, dx)) - I(x)|``) with the weights."""


def window_average(image: np.ndarray, radius: int, weigh: WeightFn) -> np.ndarray:
    """``out(x) = sum_y w(x, y) I(y) / sum_y w(x, y)`` per channel over the square window.

    ``image`` is float32 ``(H, W, 3)``; borders are mirrored without repeating the edge (as in
    :func:`meiyan.filters._box.box_mean`). ``weigh`` must leave the centre weight (``d == 0``)
    positive so the denominator never vanishes.
    """
    h, w, c = image.shape
    r = int(radius)
    padded = cv2.copyMakeBorder(image, r, r, r, r, cv2.BORDER_REFLECT_101)
    padded = padded.reshape(h + 2 * r, (w + 2 * r) * c)
    out = np.empty((h, w * c), np.float32)
    strip = max(1, _STRIP_ELEMENTS // (w * c))
    num = np.empty((min(strip, h), w * c), np.float32)
    den = np.empty_like(num)
    diff = np.empty_like(num)
    for y0 in range(0, h, strip):
        y1 = min(h, y0 + strip)
        n, d, wd = num[: y1 - y0], den[: y1 - y0], diff[: y1 - y0]
        n.fill(0.0)
        d.fill(0.0)
        centre = padded[y0 + r : y1 + r, c * r : c * (r + w)]
        for dy in range(-r, r + 1):
            rows = padded[y0 + r + dy : y1 + r + dy]
            for dx in range(-r, r + 1):
                shifted = rows[:, c * (r + dx) : c * (r + dx + w)]
                cv2.absdiff(shifted, centre, dst=wd)
                weigh(wd, dy, dx)
                cv2.accumulate(wd, d)
                cv2.accumulateProduct(wd, shifted, n)
        cv2.divide(n, d, dst=out[y0:y1])
    return out.reshape(h, w, c)
