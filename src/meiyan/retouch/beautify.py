"""The main job: every retouching stage with its own strength, in one call."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from meiyan._array import check_rgb, from_float32, to_float32
from meiyan.filters.highpass import highpass_reduce
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth_float, working_scale


@dataclass(frozen=True)
class BeautifySettings:
    """Settings of :func:`beautify`, shared by the Python API and the command line.

    Every strength is in [0, 1]; 0 switches that stage off, and all zero returns the input
    unchanged, bit for bit.
    """

    smooth: float = 0.5
    """Skin smoothing: the combined edge-preserving method (:func:`meiyan.smooth`)."""
    detail: float = 0.5
    """High-pass detail reduction: blemish-scale dark detail lightened, fine texture kept."""
    texture: float = 0.5
    """Share of fine skin texture given back after smoothing."""
    filter: str = "guided"
    """Edge-preserving filter of the smoothing stage."""
    skin: str = "auto"
    """Skin segmenter, or ``"none"`` to treat the whole frame as skin."""

    def __post_init__(self) -> None:
        for name in ("smooth", "detail", "texture"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.filter not in FILTER_SETTINGS:
            raise ValueError(
                f"unknown filter {self.filter!r}; choose one of {sorted(FILTER_SETTINGS)}"
            )

    @property
    def is_identity(self) -> bool:
        return self.smooth == 0 and self.detail == 0


def beautify(
    image: np.ndarray, settings: BeautifySettings | None = None, **overrides: object
) -> np.ndarray:
    """Retouch the skin of an RGB image (uint8 or float32); same shape and dtype back.

    ``settings`` (default :class:`BeautifySettings()`) with any field overridden by keyword,
    e.g. ``beautify(img, smooth=0.7, skin="none")``.
    """
    from meiyan.skin import skin_mask

    check_rgb(image)
    s = replace(settings or BeautifySettings(), **overrides)
    if s.is_identity:
        return image.copy()
    mask = None if s.skin == "none" else skin_mask(image, s.skin)
    x = to_float32(image)
    scale = working_scale(x.shape)
    if s.detail > 0:
        x = highpass_reduce(
            x, sigma=8.0 * scale, texture_sigma=max(0.5, scale), strength=s.detail, mask=mask
        )
    if s.smooth > 0:
        x = smooth_float(
            x, mask, filter=s.filter, strength=s.smooth, texture=s.texture, scale=scale
        )
    return from_float32(x, image.dtype)


__all__ = ["BeautifySettings", "beautify"]
