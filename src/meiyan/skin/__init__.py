"""Skin segmentation: colour rules, landmark geometry and learned models behind one registry."""

from __future__ import annotations

import numpy as np

from meiyan._array import Mask, check_rgb
from meiyan.skin import registry
from meiyan.skin.color import color_mask, hsv_mask, rgb_mask, ycrcb_mask

registry.register("ycrcb", lambda: ycrcb_mask)
registry.register("hsv", lambda: hsv_mask)
registry.register("rgb", lambda: rgb_mask)
registry.register("color", lambda: ycrcb_mask)
# The best method available; later issues point this at landmark and learned segmenters.
registry.register("auto", lambda: registry.get("color"))


def skin_mask(image: np.ndarray, method: str = "auto") -> Mask:
    """Soft skin mask of an RGB image (uint8 or float32): float32 ``(H, W)`` in [0, 1].

    ``method`` names a registered segmenter; ``meiyan.skin.registry.available()`` lists them.
    """
    check_rgb(image)
    mask = registry.get(method)(image)
    return np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False)


__all__ = ["color_mask", "hsv_mask", "registry", "rgb_mask", "skin_mask", "ycrcb_mask"]
