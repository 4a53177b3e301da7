"""Surface Blur: Photoshop's edge-preserving blur with a linear colour-difference weight."""

from __future__ import annotations

import numpy as np

from meiyan._array import Float32Image, check_float_rgb
from meiyan.filters._params import check_positive, check_radius
from meiyan.filters._window import window_average


def surface_blur(image: Float32Image, *, radius: int = 5, threshold: float = 0.1) -> Float32Image:
    """Surface Blur of a float32 RGB image in [0, 1], channel by channel.

    Each output value is a weighted mean over the square ``(2r+1) x (2r+1)`` window::

        out(x) = sum_y w(x, y) I(y) / sum_y w(x, y),
        w(x, y) = max(0, 1 - |I(y) - I(x)| / (2.5 * threshold))

    computed separately for R, G and B, with no spatial falloff. Adobe has not published the
    algorithm behind Photoshop's Filter > Blur > Surface Blur; this weight is the reverse-engineered
    formula that circulates in image-processing blogs (Photoshop's 0-255 threshold ``Y`` becomes
    ``threshold = Y / 255`` here). Neighbours that differ from the centre by ``2.5 * threshold`` or
    more get no weight, so steps larger than that stay sharp. Borders are mirrored.

    The cost is O(r^2) per pixel; the window is accumulated one offset at a time over row strips
    (float32, OpenCV in-place accumulation), without building a per-pixel window stack.
    """
    p = check_float_rgb(image)
    r = check_radius(radius)
    # The weight is scaled by 2.5 * threshold, which cancels in the ratio: max(0, t - d).
    t = np.float32(2.5 * check_positive(threshold, "threshold"))

    def weigh(d: np.ndarray, dy: int, dx: int) -> None:
        np.subtract(t, d, out=d)
        np.maximum(d, 0.0, out=d)

    return window_average(p, r, weigh)
