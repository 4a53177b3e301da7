"""Boxes of a face window that makeup work is confined to, and Gaussian blurs within them.

A region's mask is zero over most of the window, and a Gaussian reaches only a few sigmas, so
the work for a region (its blurs, its colour layer, its blend) is done in the box around its
mask, grown by the blur's reach where a blur needs it. OpenCV computes every output pixel of a
blur from the same inputs in the same order wherever the crop starts, so the results are those
of the whole window bit for bit. Blurs too wide for that to pay (the transfer's spatial step)
can instead run on block means (:func:`shrink`, :func:`coarse_sigma`) and be interpolated back
(:func:`enlarge`): a close approximation of a smooth field, not the exact blur.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from meiyan.face.window import support as window_support
from meiyan.face.window import upsample_window

BLOCK_SIGMA = 6.0
"""Blurs on block means keep at least this many blocks per sigma: their field is then smooth
enough for bilinear interpolation to stay within a fraction of an 8-bit level of the
full-resolution blur (at 1080p the transfer's lips and eyes keep full resolution or 2x2 blocks,
its blush 4x4; the foundation's local tone and the skin's and blush's feathering 2x2 or 3x3)."""

Box = tuple[slice, slice]
"""Rows and columns of a window: ``array[box]`` is the part inside."""


def support(mask: np.ndarray) -> Box | None:
    """The smallest box holding every nonzero pixel of a 2-D ``mask``; ``None`` if it has none."""
    box = window_support(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return slice(y0, y1), slice(x0, x1)


def union(box: Box, *others: Box | None) -> Box:
    """The smallest box holding ``box`` and every other given box (``None`` holds nothing)."""
    given = [box, *(b for b in others if b is not None)]
    return (
        slice(min(b[0].start for b in given), max(b[0].stop for b in given)),
        slice(min(b[1].start for b in given), max(b[1].stop for b in given)),
    )


def grow(box: Box, margin: int, shape: tuple[int, ...]) -> Box:
    """``box`` grown by ``margin`` pixels on every side, clipped to a window of ``shape``."""
    rows, cols = box
    return (
        slice(max(rows.start - margin, 0), min(rows.stop + margin, shape[0])),
        slice(max(cols.start - margin, 0), min(cols.stop + margin, shape[1])),
    )


def inner(box: Box, outer: Box) -> Box:
    """``box`` in the coordinates of the part ``outer`` (which holds it) of the window."""
    r0, c0 = outer[0].start, outer[1].start
    return slice(box[0].start - r0, box[0].stop - r0), slice(box[1].start - c0, box[1].stop - c0)


def reach(sigma: float) -> int:
    """How far (pixels) OpenCV's float Gaussian of ``sigma`` reaches, with one pixel to spare:
    its kernel has ``round(8 sigma + 1) | 1`` taps."""
    return (round(sigma * 8 + 1) | 1) // 2 + 1


def blur_box(
    x: np.ndarray, sigma: float, box: Box, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """The Gaussian blur of window ``x`` (``(H, W)`` or ``(H, W, C)``) over ``box`` only, as
    blurring the whole window gives it, reading ``x`` only within the blur's reach of ``box``.
    """
    part = grow(box, reach(sigma), x.shape)
    blurred = cv2.GaussianBlur(np.ascontiguousarray(x[part]), (0, 0), sigma, borderType=border)
    return blurred[inner(box, part)]


def blur_blocks(
    x: np.ndarray, sigma: float, box: Box, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """:func:`blur_box` for wide blurs, closely approximated: the blur runs on block means of
    ``x`` within its reach of ``box`` (a whole factor keeping at least :data:`BLOCK_SIGMA`
    blocks per sigma) and is interpolated back bilinearly over ``box``. A narrow blur
    (factor 1) is :func:`blur_box` itself."""
    factor = max(1, int(sigma / BLOCK_SIGMA))
    if factor == 1:
        return blur_box(x, sigma, box, border)
    part = grow(box, reach(sigma), x.shape)
    small = shrink(np.ascontiguousarray(x[part]), factor)
    small = cv2.GaussianBlur(small, (0, 0), coarse_sigma(sigma, factor), borderType=border)
    return enlarge(small, factor, inner(box, part))


def blur_mask(
    x: np.ndarray, sigma: float, border: int = cv2.BORDER_REPLICATE, blocks: bool = False
) -> np.ndarray:
    """The Gaussian blur of the whole window ``x``, worked out only within the blur's reach
    of ``x``'s nonzero pixels (zero beyond, as the whole blur is); ``blocks``: a wide blur
    through :func:`blur_blocks`."""
    out = np.zeros_like(x)
    box = support(x if x.ndim == 2 else x.any(axis=2))
    if box is not None:
        part = grow(box, reach(sigma), x.shape)
        if blocks:
            out[part] = blur_blocks(x, sigma, part, border)
        else:
            out[part] = cv2.GaussianBlur(x[part], (0, 0), sigma, borderType=border)
    return out


def shrink(x: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``factor`` x ``factor`` blocks of ``x`` (``(H, W)`` or ``(H, W, C)``), zeros
    padded past its bottom and right edges to whole blocks (``x`` itself when ``factor`` is 1).
    """
    if factor == 1:
        return x
    h, w = x.shape[:2]
    rows, cols = -(-h // factor), -(-w // factor)
    padded = np.zeros((rows * factor, cols * factor, *x.shape[2:]), x.dtype)
    padded[:h, :w] = x
    return cv2.resize(padded, (cols, rows), interpolation=cv2.INTER_AREA)


def coarse_sigma(sigma: float, factor: int) -> float:
    """The sigma, in blocks of :func:`shrink`, that blurs like ``sigma`` pixels at full
    resolution: the block mean is a box of variance ``(factor**2 - 1) / 12`` pixels squared."""
    return math.sqrt(max(sigma * sigma - (factor * factor - 1) / 12.0, 0.0)) / factor


def enlarge(small: np.ndarray, factor: int, box: Box) -> np.ndarray:
    """Bilinear samples of the block grid ``small`` (from :func:`shrink`) at the full-resolution
    pixels of ``box``, pixel centres as OpenCV's ``resize`` puts them (edges replicated)."""
    size = (box[1].stop - box[1].start, box[0].stop - box[0].start)
    start = (float(box[1].start), float(box[0].start))
    return upsample_window(small, (float(factor), float(factor)), start, size)
