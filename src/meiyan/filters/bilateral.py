"""Bilateral filter (Tomasi and Manduchi, 1998) on float32 RGB, with OpenCV as the engine."""

from __future__ import annotations

import cv2

from meiyan._array import Float32Image, check_float_rgb
from meiyan.filters._params import check_positive, check_radius


def bilateral(
    image: Float32Image,
    *,
    radius: int = 5,
    sigma_space: float | None = None,
    sigma_color: float = 0.1,
) -> Float32Image:
    """Bilateral filter of a float32 RGB image in [0, 1].

    C. Tomasi and R. Manduchi, "Bilateral Filtering for Gray and Color Images", ICCV 1998: each
    pixel becomes the mean of its neighbours weighted by a spatial Gaussian (``sigma_space``
    pixels, default ``radius / 2``) times a range Gaussian of the colour difference
    (``sigma_color``, on the [0, 1] scale).

    The engine is ``cv2.bilateralFilter`` on float32 data, which uses the disc of radius
    ``radius`` (not the square) and measures the colour difference as the L1 distance
    ``|dR| + |dG| + |dB|``, one weight shared by the three channels. Borders are mirrored.
    Cost O(r^2) per pixel.
    """
    p = check_float_rgb(image)
    r = check_radius(radius)
    s_space = r / 2.0 if sigma_space is None else check_positive(sigma_space, "sigma_space")
    s_color = check_positive(sigma_color, "sigma_color")
    return cv2.bilateralFilter(p, 2 * r + 1, s_color, s_space, borderType=cv2.BORDER_REFLECT_101)
