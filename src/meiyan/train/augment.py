"""Augmentation of framed training pairs with OpenCV and NumPy.

Geometry: horizontal flip, a small rotation, scale and shift applied to photo and mask together.
Colour: brightness, contrast, saturation, a small hue turn and gamma, applied to the photo only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes (each drawn uniformly in ``[-x, x]`` or around 1)."""

    flip: bool = True
    rotate_deg: float = 15.0
    scale: float = 0.12
    shift: float = 0.05
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.25
    hue_deg: float = 6.0
    gamma: float = 0.2


def _geometry(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    if cfg.flip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
    scale = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    m[:, 2] += rng.uniform(-cfg.shift, cfg.shift, size=2) * (w, h)
    image = cv2.warpAffine(np.ascontiguousarray(image), m, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpAffine(np.ascontiguousarray(mask), m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, mask


def _colour(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # H in degrees
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg)) % 360.0
    hsv[..., 1] *= 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
    x = cv2.cvtColor(np.clip(hsv, 0.0, [360.0, 1.0, 1.0]).astype(np.float32), cv2.COLOR_HSV2RGB)
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    x = x + rng.uniform(-cfg.brightness, cfg.brightness)
    x = np.clip(x, 0.0, 1.0) ** np.exp(rng.uniform(-cfg.gamma, cfg.gamma))
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Randomly changed copies of ``image`` (RGB uint8) and ``mask`` (float32 in [0, 1])."""
    cfg = cfg or AugmentConfig()
    image, mask = _geometry(image, mask, rng, cfg)
    return _colour(image, rng, cfg), mask
