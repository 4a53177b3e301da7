"""Square framing shared by U-Net training and inference.

The network sees a square window of the photo resized to its input size. Without landmarks the
window is the whole image, centred and padded with black to a square (a letterbox); with
landmarks it is a square around the face, sized so that the face fills it about as much as in
the training photos. Training and inference use the same two functions, so the model never
sees a framing it was not trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from meiyan._resample import resize_area
from meiyan.face.window import Window

# Where the letterbox window of a FASSEG training photo sits relative to the face-mesh landmarks
# of meiyan.face (medians over the 176 of 182 training photos with one face found): its side is
# 1.57 times the larger side of the landmark box; its centre lies 0.11 side above the box
# centre and 0.20 * sin(yaw) side beside it (the back of the head widens the frame of a
# turned head; this fit leaves 0.03 side of spread). The face window is made 1.2 times looser
# (side 1.9): the U-Net copes with a face 20-40% smaller than in training far better than with
# a neck cut off by the window edge (chosen on the validation part of the training split).
FACE_WINDOW_SCALE = 1.9
FACE_WINDOW_DY = -0.11
FACE_WINDOW_DX_SIN_YAW = 0.20


def whole_image_window(height: int, width: int) -> Window:
    """The letterbox window: the whole image, centred in a square of its larger side."""
    side = max(height, width)
    x0, y0 = (width - side) // 2, (height - side) // 2
    return Window(x0, y0, x0 + side, y0 + side)


def face_window(points: np.ndarray, yaw_deg: float = 0.0) -> Window:
    """The square window that frames a face as the training photos do.

    ``points``: ``(N, 2)`` face landmarks ``(x, y)`` in pixels; ``yaw_deg``: head yaw in the
    convention of :class:`meiyan.face.Pose` (positive: the face points to the image's left).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(8, round(float((hi - lo).max()) * FACE_WINDOW_SCALE))
    cx, cy = (lo + hi) / 2.0
    cx += FACE_WINDOW_DX_SIN_YAW * np.sin(np.radians(yaw_deg)) * side
    cy += FACE_WINDOW_DY * side
    return Window.square(cx, cy, side)


def crop(
    image: np.ndarray,
    win: Window,
    size: int,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``win`` of ``image`` (any dtype, 2-D or 3-D) resized to ``size`` x ``size``.

    ``convert`` is applied to the resized window (e.g. uint8 to float32), so that only
    ``size`` x ``size`` pixels are converted. A window many times ``size`` is first sampled
    every ``step`` pixels: the area average then reads a ``1 / step**2`` share of the pixels
    for the same result to within noise.
    """
    step = max(1, win.size[0] // (2 * size))
    if step > 1:
        h, w = image.shape[:2]
        inner = image[
            max(win.y0, 0) : min(win.y1, h) : step, max(win.x0, 0) : min(win.x1, w) : step
        ]
        top, left = -(min(win.y0, 0) // step), -(min(win.x0, 0) // step)
        side = -(-win.size[0] // step)
        square = np.zeros((side, side, *image.shape[2:]), image.dtype)
        square[top : top + inner.shape[0], left : left + inner.shape[1]] = inner[
            : side - top, : side - left
        ]
        out = resize_area(square, (size, size))
    else:
        out = win.at((size, size)).crop(image)
    return out if convert is None else convert(out)


def paste_max(out: np.ndarray, values: np.ndarray, win: Window, feather: float = 0.0) -> None:
    """Put a float32 map of a window (as :func:`crop` made it) back into ``out`` in place,
    keeping the maximum where something is there already; only the window's pixels are touched.

    ``feather`` (a fraction of the window side) fades the map to zero towards the window edges
    that lie inside the image, so that a window smaller than the photo leaves no hard seam.
    """
    side = win.size[0]
    win.paste_max(out, values, min(round(feather * side), side // 2))


def uncrop(
    values: np.ndarray, win: Window, height: int, width: int, feather: float = 0.0
) -> np.ndarray:
    """Inverse of :func:`crop` for a float32 map: back to ``(height, width)``, zero outside
    (see :func:`paste_max` for ``feather``)."""
    out = np.zeros((height, width), dtype=np.float32)
    paste_max(out, values, win, feather)
    return out
