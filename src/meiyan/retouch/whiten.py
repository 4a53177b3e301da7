"""Whitening (美白): a hue-keeping tone curve on skin, expressed as a soft-light layer.

Luminance follows the soft-light curve ``Y' = Y + a * Y * (1 - Y)`` (``a = MAX_LIFT *
strength``): mid-tones lift most, black and white stay. Chroma (``RGB - Y``) is then scaled by
one factor per pixel, so the hue angle cannot change; the factor is the square root of the
shrink that blending towards white would give (the skin gets fairer, not grey), capped so that
no channel clips (clipping is what turns brightened skin pink or yellow). ModelScope's
skin-retouching pipeline whitens with a constant layer that lifts red more than green and
blue; this curve keeps each skin's own hue.
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, rgb3
from meiyan.filters.highpass import luma
from meiyan.retouch.blend import gain_for, layer_of

MAX_LIFT = 0.6


def whiten(image: Float32Image, strength: float) -> Float32Image:
    """Whitened float32 RGB ``image`` (every pixel; mask it to confine it to skin)."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    x = np.asarray(image, np.float32)
    y = luma(x)
    y2 = y + np.float32(MAX_LIFT * strength) * y * (np.float32(1.0) - y)
    c = x - rgb3(y)
    r, g, b = cv2.split(c)
    c_max, c_min = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    k = np.sqrt((1.0 - y2) / np.maximum(1.0 - y, 1e-4))
    # The largest chroma factor that keeps every channel in [0, 1].
    np.minimum(k, (1.0 - y2) / np.maximum(c_max, 1e-6), out=k)
    np.minimum(k, y2 / np.maximum(-c_min, 1e-6), out=k)
    c *= rgb3(k)
    c += rgb3(y2)
    return np.clip(c, 0.0, 1.0)


def whiten_layer(image: Float32Image, strength: float) -> np.ndarray:
    """The soft-light layer (float32, 0.5 = no change) that whitens ``image`` by ``strength``."""
    return layer_of(gain_for(image, whiten(image, strength)))


__all__ = ["MAX_LIFT", "whiten", "whiten_layer"]
