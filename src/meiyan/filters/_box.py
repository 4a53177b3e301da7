"""Box mean used by the filters: O(1) per pixel in the radius, mirrored borders."""

from __future__ import annotations

import cv2
import numpy as np


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` window, borders mirrored without repeating the edge."""
    k = 2 * int(radius) + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT_101)
