"""Even skin tone: a soft-light layer that takes excess pigment out of skin, shading kept.

The classical predictor of the tone slot of the ABPN-style pipeline (:mod:`meiyan.retouch.blend`).
Skin colour is read in log-RGB, where a pigment multiplies each channel by its own transmittance
and shading multiplies all three alike. After N. Tsumura et al., "Image-based skin color and
texture analysis/synthesis by extracting hemoglobin and melanin information in the skin"
(SIGGRAPH 2003), a colour change is unmixed into three amounts: shading (along ``(1, 1, 1)``),
haemoglobin and melanin, whose absorbance directions are :data:`HAEMOGLOBIN` and
:data:`MELANIN`. Redness, blotches, acne halos and brown patches are *more* pigment than the
skin around them; natural shading and highlights are mostly the first amount.

Colour is smoothed inside the skin only (normalised convolution, H. Knutsson and C.-F. Westin,
"Normalized and differential convolution", CVPR 1993) at two scales: ``BLOTCH`` (finer detail is
texture, pores and spots, left to the other stages) and ``SHADING``. The difference of the two,
in log-RGB, is unmixed; its shading part is kept whole and the pigment it holds over the
surroundings is taken out. Shading changes colour a little too (a camera's tone curve
saturates shadows, highlights are whiter), so the part of the pigment amounts that follows the
shading amount across the face (a least-squares slope, the worst-fitting fifth left out) is
shading's, and where shading changes more than pigment the removal fades (a Wiener-like gate,
``p^2 / (p^2 + g s^2)``, the shading weighted by ``g = 0.1``). Too little pigment is never
added. The layer is the soft-light layer that takes the ``BLOTCH``-scale image to that target;
applied to the photo, it modulates every pixel's texture instead of replacing it.
"""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, Mask, rgb3
from meiyan._resample import resize_area
from meiyan.retouch.blend import gain_for, layer_of

BLOTCH = 0.03
"""Finest scale evened (Gaussian sigma, fraction of the face size). Finer colour changes are
left alone: spots are the blemish stage's, and the skin's own fine mottling is part of it
(evening it changes natural skin more than it takes out blotches, on the defect benchmark's
training faces)."""
SHADING = 0.08
"""Scale of the surroundings a patch is compared with."""
HAEMOGLOBIN = (0.05, 0.7, 0.7)
"""Absorbance of haemoglobin in R, G, B (log units, any scale): its Q bands (540-580 nm) take
green, the Soret band's tail blue, red passes (S. Prahl's tabulated extinction coefficients)."""
MELANIN = (0.37, 0.57, 1.0)
"""Absorbance of melanin in R, G, B: rising towards blue as about wavelength^-3.5 (at 610, 540
and 460 nm; S. L. Jacques, "Optical properties of biological tissues: a review", Phys. Med.
Biol. 58(11), 2013)."""

_EPS = 0.02  # added before the log: dark pixels are not amplified into noise
_TRIM = 0.8  # share of the skin's pixels (best-fitting) that sets the shading slope
_GATE = 0.1  # weight of the shading change against the pigment change in the removal's gate
_BASIS = np.stack(
    [np.ones(3) / np.sqrt(3), *(np.asarray(v) / np.linalg.norm(v) for v in (HAEMOGLOBIN, MELANIN))],
    axis=1,
).astype(np.float32)
_SIGNED = (np.linalg.inv(_BASIS) * np.array([[1.0], [-1.0], [-1.0]])).astype(np.float32)


def masked_blur(x: np.ndarray, mask: Mask, sigma: float) -> np.ndarray:
    """Gaussian blur of ``x`` over ``mask`` only (normalised convolution), fast at any sigma.

    Large sigmas run on a copy reduced by up to ``sigma / 2`` and are upsampled back.
    """
    h, w = mask.shape
    k = max(1, int(sigma / 2))
    m = mask.astype(np.float32)
    xm = x * (rgb3(m) if x.ndim == 3 else m)
    if k > 1:
        size = (max(1, w // k), max(1, h // k))
        xm = resize_area(xm, size)
        m = resize_area(m, size)
    s = sigma * xm.shape[1] / w
    num = cv2.GaussianBlur(xm, (0, 0), s)
    den = cv2.GaussianBlur(m, (0, 0), s)
    den = np.maximum(den, np.float32(1e-4))
    out = num / (rgb3(den) if x.ndim == 3 else den)
    if k > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def unmix(log_change: np.ndarray) -> np.ndarray:
    """Amounts of shading, haemoglobin and melanin, ``(..., 3)``, in a log-RGB change
    ``(..., 3)``: ``log_change = s * grey - h * HAEMOGLOBIN - m * MELANIN`` (unit directions),
    so ``s > 0`` is lighter and ``h, m > 0`` more pigment."""
    flat = np.ascontiguousarray(log_change, np.float32).reshape(-1, 1, 3)
    return cv2.transform(flat, _SIGNED).reshape(log_change.shape)


def _shading_slope(amounts: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Least-squares slopes of the pigment amounts on the shading amount over ``skin``, the
    worst-fitting ``1 - _TRIM`` of the pixels left out."""
    sub, inside = amounts[::2, ::2], skin[::2, ::2]
    s, h, m = (sub[..., i][inside].astype(np.float64) for i in range(3))
    slope = np.zeros(2)
    if len(s) < 10:
        return slope.astype(np.float32)
    keep = np.ones(len(s), bool)
    for _ in range(2):
        sk = s[keep]  # sums, not BLAS dot products: no thread hand-off for 25k numbers
        slope = np.array([(sk * h[keep]).sum(), (sk * m[keep]).sum()])
        slope /= max(float((sk * sk).sum()), 1e-12)
        misfit = np.abs(h - s * slope[0]) + np.abs(m - s * slope[1])
        keep = misfit <= np.quantile(misfit, _TRIM)
    return slope.astype(np.float32)


def even_tone_layer(image: Float32Image, mask: Mask, face_size: float) -> np.ndarray:
    """Soft-light layer (float32 ``(H, W, 3)``, 0.5 = no change) that evens the skin's tone.

    ``image``: float32 RGB; ``mask``: ``(H, W)`` weights in [0, 1] of the skin to read (the
    pipeline leaves out the spots it is about to heal); ``face_size``: the face's size in
    pixels of ``image``, which sets the scales. Outside the skin the layer is meaningless and
    must be masked by the caller (the pipeline always does).
    """
    skin = mask > 0.5
    if not skin.any():
        return np.full(image.shape, 0.5, np.float32)
    mid = masked_blur(image, mask, max(1.0, BLOTCH * face_size))
    coarse = masked_blur(image, mask, max(2.0, SHADING * face_size))
    eps = np.float32(_EPS)
    lifted = mid + eps
    amounts = unmix(cv2.log(lifted) - cv2.log(coarse + eps))
    shading = amounts[..., 0]
    slope = _shading_slope(amounts, skin)  # pigment = the last two amounts less slope * shading
    pigment = cv2.transform(amounts, np.array([[-slope[0], 1, 0], [-slope[1], 0, 1]], np.float32))
    excess = np.maximum(pigment, 0.0)
    p2 = np.square(excess[..., 0] + excess[..., 1])
    gate = p2 / (p2 + np.float32(_GATE) * np.square(shading) + np.float32(1e-12))
    excess *= cv2.merge([gate, gate])
    removal = cv2.transform(excess, _BASIS[:, 1:])  # the log-RGB change taking the excess out
    target = np.clip(lifted * cv2.exp(removal) - eps, 0.0, 1.0)
    return layer_of(gain_for(mid, target))


__all__ = ["BLOTCH", "HAEMOGLOBIN", "MELANIN", "SHADING", "even_tone_layer", "masked_blur", "unmix"]
