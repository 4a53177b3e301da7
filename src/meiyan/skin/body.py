"""Skin away from the faces (arms, hands, shoulders) from a colour model of the faces' skin.

A learned segmenter sees each face in its own window; beyond the windows a per-image colour
model takes over, as in :mod:`meiyan.skin.adaptive` but without GrabCut: a Gaussian in (Cr, Cb)
fitted to the pixels the network is sure are skin (deriving the skin model from the detected
faces of each photo follows M. Yogarajah, J. Condell, K. Curran, A. Cheddad and P. McKevitt,
"A dynamic threshold approach for skin segmentation in color images", ICIP 2010), limited to the
person (MediaPipe selfie segmentation) and to lightness near the faces' (dark hair and clothes
with skin chroma, bright walls are left out). It works on the person mask's small copy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from meiyan._array import Mask

MIN_SEEDS = 200
"""Fewest sure-skin pixels the colour model is fitted on; fewer: no body skin."""
_CHROMA_D2 = (4.0, 9.0)  # squared Mahalanobis distance: likelihood 1 below, 0 above
_OPEN = 7  # pixels: a morphological opening drops what is thinner (edges, straps, strands)
_LIGHT = (0.45, 0.6)  # lightness over the faces' mean: rises from 0 to 1 ...
_BRIGHT = (1.35, 1.6)  # ... and falls back to 0
_MIN_CHROMA_STD = 0.006  # floor of the chroma spread ([0, 1] units)


def _between(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, linear between."""
    return np.clip((x - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0)


def body_skin(rgb: np.ndarray, person: Mask, sure: np.ndarray, covered: Mask) -> Mask:
    """Skin likelihood ``(h, w)`` float32 in [0, 1] where ``covered`` (the face windows' own
    weight, 1 inside them) leaves room, inside the ``person``.

    ``rgb``: uint8 RGB copy at the person mask's size; ``sure``: boolean, the pixels the face
    windows call skin with confidence (the model is fitted on them).
    """
    out = np.zeros(person.shape, np.float32)
    room = (person * (1.0 - covered)) > 0.05
    if int(sure.sum()) < MIN_SEEDS or not room.any():
        return out
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    # The seeds' lightness between its 10th and 95th percentiles (NumPy's linear
    # interpolation, read off the histogram of the 8-bit values).
    lo, hi = _percentiles(np.bincount(ycc[..., 0][sure], minlength=256), (10, 95))
    keep = sure & (ycc[..., 0] >= lo) & (ycc[..., 0] <= hi)
    samples = ycc[keep].astype(np.float64) * (1 / 255)
    mean = samples.mean(axis=0)
    c = samples[:, 1:] - mean[1:]
    # The chroma covariance (ddof 1, as np.cov) from sums over the two planes.
    cov = np.array([[(c[:, 0] ** 2).sum(), (c[:, 0] * c[:, 1]).sum()],
                    [0.0, (c[:, 1] ** 2).sum()]]) / max(len(c) - 1, 1)
    cov[1, 0] = cov[0, 1]
    inv = np.linalg.inv(cov + np.eye(2) * _MIN_CHROMA_STD**2).astype(np.float32)
    # Only the box of the room left by the windows is classified.
    rows, cols = np.nonzero(room.any(axis=1))[0], np.nonzero(room.any(axis=0))[0]
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = np.float32(1 / 255)
    y, cr, cb = (plane.astype(np.float32) * scale for plane in cv2.split(ycc[box]))
    cr -= np.float32(mean[1])
    cb -= np.float32(mean[2])
    d2 = inv[0, 0] * cr**2 + 2 * inv[0, 1] * cr * cb
    d2 += inv[1, 1] * cb**2
    light = y * np.float32(1.0 / max(float(mean[0]), 1e-3))
    skin = 1.0 - _between(d2, *_CHROMA_D2)
    skin *= _between(light, *_LIGHT) * (1.0 - _between(light, *_BRIGHT))
    skin *= person[box] * (1.0 - covered[box])
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_OPEN, _OPEN))
    out[box] = cv2.morphologyEx(skin, cv2.MORPH_OPEN, disk)
    return out


def _percentiles(counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile`` (linear interpolation) of the values whose histogram is ``counts``
    (``counts[v]``: how many equal ``v``)."""
    ends = np.cumsum(counts)  # value v fills the sorted ranks ends[v - 1] .. ends[v] - 1
    out = []
    for q in qs:
        rank = (ends[-1] - 1) * q / 100
        below = int(np.searchsorted(ends, math.floor(rank), side="right"))
        above = int(np.searchsorted(ends, math.ceil(rank), side="right"))
        out.append(below + (rank - math.floor(rank)) * (above - below))
    return out
