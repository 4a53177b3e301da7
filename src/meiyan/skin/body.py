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
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32) * np.float32(1 / 255)
    ys = ycc[..., 0][sure]
    lo, hi = np.percentile(ys, [10, 95])
    keep = (ys >= lo) & (ys <= hi)
    samples = ycc[..., 1:][sure][keep].astype(np.float64)
    mean = samples.mean(axis=0)
    inv = np.linalg.inv(np.cov(samples.T) + np.eye(2) * _MIN_CHROMA_STD**2).astype(np.float32)
    # Only the box of the room left by the windows is classified.
    rows, cols = np.nonzero(room.any(axis=1))[0], np.nonzero(room.any(axis=0))[0]
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    y, d = ycc[box][..., 0], ycc[box][..., 1:] - mean.astype(np.float32)
    d2 = inv[0, 0] * d[..., 0] ** 2 + 2 * inv[0, 1] * d[..., 0] * d[..., 1]
    d2 += inv[1, 1] * d[..., 1] ** 2
    light = y * np.float32(1.0 / max(float(ys[keep].mean()), 1e-3))
    skin = 1.0 - _between(d2, *_CHROMA_D2)
    skin *= _between(light, *_LIGHT) * (1.0 - _between(light, *_BRIGHT))
    skin *= person[box] * (1.0 - covered[box])
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_OPEN, _OPEN))
    out[box] = cv2.morphologyEx(skin, cv2.MORPH_OPEN, disk)
    return out
