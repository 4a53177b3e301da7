"""Square framing shared by U-Net training and inference.

The network sees a square window of the photo resized to its input size. Without landmarks the
window is the whole image, centred and padded with black to a square (a letterbox); with
landmarks it is a square around the face, sized so that the face fills it about as much as in
the training photos. Training and inference use the same two functions, so the model never
sees a framing it was not trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

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


@dataclass(frozen=True)
class Window:
    """A square window ``[x0, x0 + side) x [y0, y0 + side)`` in image pixels (may overhang)."""

    x0: int
    y0: int
    side: int


def whole_image_window(height: int, width: int) -> Window:
    """The letterbox window: the whole image, centred in a square of its larger side."""
    side = max(height, width)
    return Window((width - side) // 2, (height - side) // 2, side)


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
    return Window(round(cx - side / 2), round(cy - side / 2), side)


def _pad_to_window(image: np.ndarray, win: Window) -> np.ndarray:
    """The pixels of ``win``; parts outside the image are black (zero)."""
    h, w = image.shape[:2]
    out = np.zeros((win.side, win.side, *image.shape[2:]), dtype=image.dtype)
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x0 + win.side, w), min(win.y0 + win.side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0] = image[sy0:sy1, sx0:sx1]
    return out


def crop(
    image: np.ndarray,
    win: Window,
    size: int,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``win`` of ``image`` (any dtype, 2-D or 3-D) resized to ``size`` x ``size``.

    ``convert`` is applied to the window's pixels before resizing (e.g. uint8 to float32), so
    that only the window is converted, not the whole photo.
    """
    square = _pad_to_window(image, win)
    if convert is not None:
        square = convert(square)
    interp = cv2.INTER_AREA if win.side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp)


def _edge_ramp(n: int, fade: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    """Weights along one side of a window: 1 inside, falling linearly to 0 at faded ends."""
    ramp = np.ones(n, dtype=np.float32)
    if fade > 0:
        rise = (np.arange(fade, dtype=np.float32) + 0.5) / fade
        if fade_start:
            ramp[:fade] = np.minimum(ramp[:fade], rise)
        if fade_end:
            ramp[n - fade :] = np.minimum(ramp[n - fade :], rise[::-1])
    return ramp


def paste_max(out: np.ndarray, values: np.ndarray, win: Window, feather: float = 0.0) -> None:
    """Put a float32 map of a window (as :func:`crop` made it) back into ``out`` in place,
    keeping the maximum where something is there already; only the window's pixels are touched.

    ``feather`` (a fraction of the window side) fades the map to zero towards the window edges
    that lie inside the image, so that a window smaller than the photo leaves no hard seam.
    """
    height, width = out.shape[:2]
    square = cv2.resize(
        values.astype(np.float32), (win.side, win.side), interpolation=cv2.INTER_LINEAR
    )
    fade = min(round(feather * win.side), win.side // 2)
    if fade > 0:
        wx = _edge_ramp(win.side, fade, win.x0 > 0, win.x0 + win.side < width)
        wy = _edge_ramp(win.side, fade, win.y0 > 0, win.y0 + win.side < height)
        square *= wy[:, None] * wx[None, :]
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x0 + win.side, width), min(win.y0 + win.side, height)
    if sx1 > sx0 and sy1 > sy0:
        region = out[sy0:sy1, sx0:sx1]
        inner = square[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0]
        np.maximum(region, inner, out=region)


def uncrop(
    values: np.ndarray, win: Window, height: int, width: int, feather: float = 0.0
) -> np.ndarray:
    """Inverse of :func:`crop` for a float32 map: back to ``(height, width)``, zero outside
    (see :func:`paste_max` for ``feather``)."""
    out = np.zeros((height, width), dtype=np.float32)
    paste_max(out, values, win, feather)
    return out
