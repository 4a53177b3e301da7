"""Soft-light blend layers: the one form every tone edit takes.

ABPN (T. Lei, Y. Zhou, W. Wang, Z. Li and J. Zhang, "ABPN: Adaptive Blend Pyramid Network for
Real-Time Local Retouching of Ultra High-Resolution Photo", CVPR 2022) does not predict retouched
pixels: it predicts a *blend layer* ``B`` and applies it to the photo with the soft-light formula

    ``out = (1 - 2B) * I**2 + 2B * I  =  I + (2B - 1) * I * (1 - I)``,

so ``B = 0.5`` changes nothing, ``B > 0.5`` lightens and ``B < 0.5`` darkens, most in the mid-tones
and never past 0 or 1. A layer predicted at a low working resolution and upsampled still edits
the full-resolution pixels, whose texture it modulates instead of replacing. Here layers are
float32 ``(H, W, 3)`` in [0, 1]; ``gain = 2B - 1`` in [-1, 1] is the same layer centred on 0,
the form that strengths and masks scale linearly.
"""

from __future__ import annotations

import numpy as np

from meiyan._array import Float32Image, Mask

NEUTRAL = 0.5
"""The layer value that leaves a pixel unchanged."""

_MIN_RANGE = 1e-3  # below this I * (1 - I) a pixel is black or white: no layer can move it


def soft_light(image: Float32Image, layer: np.ndarray) -> Float32Image:
    """ABPN's soft-light blend of float32 ``image`` with ``layer`` (both in [0, 1])."""
    return apply_gain(image, gain_of(layer))


def apply_gain(image: Float32Image, gain: np.ndarray) -> Float32Image:
    """Soft light written with the centred layer: ``I + gain * I * (1 - I)``."""
    x = np.asarray(image, np.float32)
    return x + np.asarray(gain, np.float32) * x * (np.float32(1.0) - x)


def gain_of(layer: np.ndarray) -> np.ndarray:
    """Centred form ``2B - 1`` of a layer."""
    return np.asarray(layer, np.float32) * np.float32(2.0) - np.float32(1.0)


def layer_of(gain: np.ndarray) -> np.ndarray:
    """Layer ``(gain + 1) / 2`` of a centred gain, clipped to [0, 1]."""
    return np.clip((np.asarray(gain, np.float32) + np.float32(1.0)) * np.float32(0.5), 0.0, 1.0)


def gain_for(image: Float32Image, target: Float32Image) -> np.ndarray:
    """The centred layer that takes ``image`` to ``target`` (both float32 in [0, 1]).

    The inverse of :func:`apply_gain`: ``(target - I) / (I * (1 - I))``, clipped to [-1, 1]
    where the formula cannot reach the target; 0 where ``I`` is black or white.
    """
    x = np.asarray(image, np.float32)
    r = x * (np.float32(1.0) - x)
    g = np.zeros_like(x)
    ok = r > _MIN_RANGE
    np.divide(np.asarray(target, np.float32) - x, r, out=g, where=ok)
    return np.clip(g, -1.0, 1.0)


def scale_layer(layer: np.ndarray, amount: float | Mask) -> np.ndarray:
    """Layer with its effect scaled by ``amount`` (a strength, or an ``(H, W)`` mask times one).

    Because soft light is linear in the layer, ``soft_light(I, scale_layer(B, a))`` equals the
    blend ``(1 - a) * I + a * soft_light(I, B)``: strengths and masks act on the layer alone.
    """
    a = np.asarray(amount, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return np.float32(NEUTRAL) + (np.asarray(layer, np.float32) - np.float32(NEUTRAL)) * a


__all__ = [
    "NEUTRAL",
    "apply_gain",
    "gain_for",
    "gain_of",
    "layer_of",
    "scale_layer",
    "soft_light",
]
