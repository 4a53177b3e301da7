"""Smart Blur: a Gaussian blur restricted to neighbours close in value to the centre pixel."""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, check_float_rgb
from meiyan.filters._params import check_positive, check_radius
from meiyan.filters._window import window_average


def smart_blur(image: Float32Image, *, radius: int = 5, threshold: float = 0.1) -> Float32Image:
    """Photoshop-style Smart Blur of a float32 RGB image in [0, 1], channel by channel.

    Adobe documents Smart Blur (Photoshop's Filter > Blur > Smart Blur, also an After Effects
    effect) only through its controls: a radius to search and a threshold on how much a pixel
    may differ before it is left out of the blur. This implementation follows that description:
    over the square ``(2r+1) x (2r+1)`` window,

        out(x) = sum_y g(y - x) [|I(y) - I(x)| <= threshold] I(y)
                 / sum_y g(y - x) [|I(y) - I(x)| <= threshold],

    with a Gaussian spatial weight ``g`` of standard deviation ``radius / 2`` and a hard 0/1 range
    weight. The test is made per channel (not on luminance), so an edge between two colours of
    equal luminance is still kept. Borders are mirrored; cost O(r^2) per pixel, accumulated one
    window offset at a time over row strips.
    """
    p = check_float_rgb(image)
    r = check_radius(radius)
    t = check_positive(threshold, "threshold")
    sigma = r / 2.0
    offsets = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2.0 * sigma * sigma))

    def weigh(d: np.ndarray, dy: int, dx: int) -> None:
        # THRESH_BINARY_INV: d > t -> 0, otherwise the spatial weight.
        cv2.threshold(d, t, float(g[dy + r, dx + r]), cv2.THRESH_BINARY_INV, dst=d)

    return window_average(p, r, weigh)
