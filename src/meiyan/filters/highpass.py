"""High-pass detail reduction (高反差减弱): lighten blemish-scale detail, keep fine texture."""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, check_float_rgb, rgb3

# ITU-R BT.601 luma weights, the ones JPEG and the YCrCb skin rule use.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luma(x: Float32Image) -> np.ndarray:
    """Luma of a float32 RGB image (BT.601 weights)."""
    return cv2.transform(x, LUMA[None, :])


def high_pass(image: Float32Image, sigma: float) -> Float32Image:
    """Signed high-pass ``image - G_sigma * image``: the detail finer than ``sigma`` pixels.

    Photoshop's "High Pass" (高反差保留) shows the same quantity offset by 0.5.
    """
    x = check_float_rgb(image)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return x - cv2.GaussianBlur(x, (0, 0), sigma)


def highpass_reduce(
    image: Float32Image,
    *,
    sigma: float = 8.0,
    texture_sigma: float = 1.0,
    threshold: float = 0.04,
    strength: float = 0.5,
    mask: np.ndarray | None = None,
) -> Float32Image:
    """Reduce blemish-scale detail of a float32 RGB image, keeping fine texture.

    The classical retoucher's high-pass technique (高反差保留 then a brightening curve through
    it, as in Photoshop "channel" skin smoothing): the band-pass ``B = G_t * x - G_s * x`` between
    the texture scale ``texture_sigma`` and the blemish scale ``sigma`` marks spots, blotches
    and lines; dark detail (negative luma in ``B``) up to ``threshold`` deep gets a map
    ``m`` in [0, 1]. Those areas are lightened and blended towards the smooth layer by removing
    ``strength * m * B``; detail finer than ``texture_sigma`` (pores, skin grain) is not in ``B``
    and stays. ``mask`` (``(H, W)`` in [0, 1]) limits the effect, e.g. to skin.
    """
    x = check_float_rgb(image)
    if not 0 < texture_sigma < sigma:
        raise ValueError(f"need 0 < texture_sigma < sigma, got {texture_sigma} and {sigma}")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    band = cv2.GaussianBlur(x, (0, 0), texture_sigma)
    band -= cv2.GaussianBlur(x, (0, 0), sigma)
    m = np.clip(luma(band) * np.float32(-1.0 / threshold), 0.0, 1.0)
    m = cv2.GaussianBlur(m, (0, 0), texture_sigma)
    if mask is not None:
        m *= mask
    m *= np.float32(strength)
    band *= rgb3(m)
    return np.clip(x - band, 0.0, 1.0)
