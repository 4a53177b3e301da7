"""Even skin tone: a soft-light layer that cancels low-frequency unevenness inside skin.

The classical predictor of the tone slot of the ABPN-style pipeline (:mod:`meiyan.retouch.blend`).
Skin colour is split, inside the skin mask only (normalised convolution, H. Knutsson and
C.-F. Westin, "Normalized and differential convolution", CVPR 1993), into three scales:

* finer than ``BLOTCH`` (a fraction of the face): texture, pores and spots, left alone here;
* between ``BLOTCH`` and ``SHADING``: blotches, redness and dark patches;
* coarser than ``SHADING``: the face's shading and its overall colour.

The target keeps the shading and the texture: chromaticity (colour over luminance) is taken
from the coarse scale and pulled half-way to the face's median, which evens redness and
blotches; luminance keeps the coarse scale and lifts dark patches of the middle band
(``DARK_LIFT`` of their depth) but keeps highlights. The layer is the soft-light layer that
takes the middle-scale image to that target; applied to the photo, it modulates every pixel's
texture instead of replacing it.
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask
from meiyan.filters.highpass import luma
from meiyan.retouch.blend import gain_for, layer_of

BLOTCH = 0.012
"""Finest scale evened (Gaussian sigma, fraction of the face size)."""
SHADING = 0.08
"""Scale from which on shading is kept."""
DARK_LIFT = 0.7
"""Share of a dark patch's depth that is lifted."""
GLOBAL_PULL = 0.5
"""Share of the way from the local chromaticity to the face's median."""


def masked_blur(x: np.ndarray, mask: Mask, sigma: float) -> np.ndarray:
    """Gaussian blur of ``x`` over ``mask`` only (normalised convolution), fast at any sigma.

    Large sigmas run on a copy reduced by up to ``sigma / 2`` and are upsampled back.
    """
    h, w = mask.shape
    k = max(1, int(sigma / 2))
    m = mask.astype(np.float32)
    xm = x * (m[..., None] if x.ndim == 3 else m)
    if k > 1:
        size = (max(1, w // k), max(1, h // k))
        xm = cv2.resize(xm, size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(m, size, interpolation=cv2.INTER_AREA)
    s = sigma * xm.shape[1] / w
    num = cv2.GaussianBlur(xm, (0, 0), s)
    den = cv2.GaussianBlur(m, (0, 0), s)
    out = num / np.maximum(den, 1e-4)[..., None] if x.ndim == 3 else num / np.maximum(den, 1e-4)
    if k > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def even_tone_layer(image: Float32Image, mask: Mask, face_size: float) -> np.ndarray:
    """Soft-light layer (float32 ``(H, W, 3)``, 0.5 = no change) that evens the skin's tone.

    ``image``: float32 RGB; ``mask``: ``(H, W)`` weights in [0, 1] of the skin to read (the
    pipeline leaves out the spots it is about to heal); ``face_size``: the face's size in
    pixels of ``image``, which sets the scales. Outside the skin the layer is meaningless and
    must be masked by the caller (the pipeline always does).
    """
    if not (mask > 0.5).any():
        return np.full(image.shape, 0.5, np.float32)
    eps = np.float32(1e-3)
    mid = masked_blur(image, mask, max(1.0, BLOTCH * face_size))
    coarse = masked_blur(image, mask, max(2.0, SHADING * face_size))
    y_mid, y_coarse = luma(mid), luma(coarse)
    chroma = coarse / (y_coarse[..., None] + eps)
    skin = mask[::2, ::2] > 0.5  # every other pixel of every other row: plenty for a median
    pixels = image[::2, ::2][skin] if skin.any() else image[mask > 0.5]
    median = np.median(pixels / (luma(pixels[None])[0][:, None] + eps), axis=0)
    chroma += np.float32(GLOBAL_PULL) * (median.astype(np.float32) - chroma)
    y_target = y_mid + np.float32(DARK_LIFT) * np.maximum(y_coarse - y_mid, 0.0)
    target = np.clip(y_target[..., None] * chroma, 0.0, 1.0)
    return layer_of(gain_for(mid, target))


__all__ = ["BLOTCH", "SHADING", "even_tone_layer", "masked_blur"]
