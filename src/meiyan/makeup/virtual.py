"""Virtual makeup: paint a look's layers onto one face."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from meiyan._array import Mask
from meiyan.face.regions import FaceFrame
from meiyan.makeup.layers import Canvas
from meiyan.makeup.looks import Look
from meiyan.makeup.regions import mask_sets


def apply_look(
    lab: np.ndarray,
    points: np.ndarray,
    look: Look,
    shades: Mapping[str, float],
    masks: tuple[dict[str, Mask], dict[str, Mask]] | None = None,
) -> np.ndarray:
    """Paint ``look`` onto one face: ``lab`` is the float32 Lab window around it, ``points``
    its ``(478, 2)`` landmarks in window pixels, ``shades`` the amount per region (each layer's
    strength is multiplied by its region's shade; regions absent or at 0 are left alone);
    ``masks``: the face's :func:`~meiyan.makeup.regions.mask_sets` in the window, made here
    when ``None``."""
    soft, hard = mask_sets(points, lab.shape[:2]) if masks is None else masks
    canvas = Canvas(soft=soft, hard=hard, frame=FaceFrame.of(points))
    out = lab.copy()
    for layer in look.layers:
        amount = float(shades.get(layer.region, 0.0))
        if amount > 0.0 and layer.strength > 0.0:
            out = layer.paint(out, canvas, amount)
    return out
