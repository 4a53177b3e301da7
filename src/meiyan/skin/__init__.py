"""Skin segmentation: colour rules, landmark geometry and learned models behind one registry."""

from __future__ import annotations

import threading
import warnings

import numpy as np

from meiyan._array import Mask, check_rgb
from meiyan.skin import registry
from meiyan.skin.adaptive import AdaptiveSkinSegmenter
from meiyan.skin.color import color_mask, hsv_mask, rgb_mask, ycrcb_mask
from meiyan.skin.landmarks import LandmarkSkinSegmenter
from meiyan.skin.unet_onnx import UNetSkinSegmenter


class NoFaceWarning(UserWarning):
    """A face-based skin segmenter found no face and colour rules were used instead."""


class AutoSkinSegmenter:
    """The best method available, ``primary`` (by ``bench/skin_iou.py``), or ``fallback``.

    ``primary`` names a registered segmenter with a ``segment(image)`` method that returns
    ``None`` when it cannot work on an image (no face); the image then goes to ``fallback`` and
    a :class:`NoFaceWarning` is issued, once per instance: the registry keeps one instance, so
    ``meiyan.skin_mask`` and the command line warn once per process.
    """

    def __init__(self, primary: str = "unet", fallback: str = "color") -> None:
        self.primary = primary
        self.fallback = fallback
        self._warned = False
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Mask:
        mask = registry.get(self.primary).segment(image)
        if mask is not None:
            return mask
        with self._lock:
            warn, self._warned = not self._warned, True
        if warn:
            warnings.warn(
                f"no face found: skin from the {self.fallback!r} colour rules instead of "
                f"{self.primary!r} (warned once; later images without a face fall back silently)",
                NoFaceWarning,
                stacklevel=3,
            )
        return registry.get(self.fallback)(image)


registry.register("ycrcb", lambda: ycrcb_mask)
registry.register("hsv", lambda: hsv_mask)
registry.register("rgb", lambda: rgb_mask)
registry.register("color", lambda: ycrcb_mask)
registry.register("face", LandmarkSkinSegmenter)
registry.register("adaptive", AdaptiveSkinSegmenter)
registry.register("unet", UNetSkinSegmenter)
registry.register("auto", AutoSkinSegmenter)


def skin_mask(image: np.ndarray, method: str = "auto") -> Mask:
    """Soft skin mask of an RGB image (uint8 or float32): float32 ``(H, W)`` in [0, 1].

    ``method`` names a registered segmenter; ``meiyan.skin.registry.available()`` lists them.
    ``auto`` is ``unet`` (the shipped U-Net on face-centred crops) where a face is found and
    ``color`` elsewhere (with one :class:`NoFaceWarning` per process).
    """
    check_rgb(image)
    mask = registry.get(method)(image)
    return np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False)


__all__ = [
    "AdaptiveSkinSegmenter",
    "AutoSkinSegmenter",
    "LandmarkSkinSegmenter",
    "NoFaceWarning",
    "UNetSkinSegmenter",
    "color_mask",
    "hsv_mask",
    "registry",
    "rgb_mask",
    "skin_mask",
    "ycrcb_mask",
]
