"""Augmentation of framed training pairs with OpenCV and NumPy.

Geometry: horizontal flip, a small rotation, scale and shift applied to photo and mask together.
Colour: brightness, contrast, saturation, a small hue turn and gamma, applied to the photo only.
:func:`augment_framed` does the same and more (white balance, exposure, skin tones, blur, noise,
JPEG, occluders, partial crops) for the framed crops of :mod:`meiyan.train.skin_data`.
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class PhotoConfig:
    """Ranges of what real photos vary in, for framed skin crops (:func:`augment_framed`).

    Geometry: the face window scaled by ``exp(U(-scale, scale))``, turned by up to
    ``rotate_deg``, shifted by up to ``shift`` of its side, and with probability ``partial``
    shifted by up to ``partial_shift`` (a face cut by the photo's edge). Colour: white balance
    (per-channel gains), exposure (stops), gamma, skin-tone moves (hue turn and saturation
    that stay skin), then blur, sensor noise, JPEG re-encoding and occluders, each with its
    probability. Occluders (objects in front of the face) are not skin.
    """

    flip: bool = True
    scale: float = 0.25
    rotate_deg: float = 20.0
    shift: float = 0.08
    partial: float = 0.1
    partial_shift: float = 0.35
    white_balance: float = 0.12
    exposure_stops: float = 0.8
    gamma: float = 0.25
    hue_deg: float = 8.0
    saturation: float = 0.35
    blur: float = 0.2
    noise: float = 0.25
    jpeg: float = 0.25
    occluder: float = 0.2


def _framed_geometry(
    image: np.ndarray, target: np.ndarray, size: int, inner: float, rng: np.random.Generator,
    cfg: PhotoConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The stored square (whose central ``inner`` pixels are the face window) warped to the
    network's ``size``: the face window's content fills it, moved, scaled and turned."""
    if cfg.flip and rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    zoom = math.exp(rng.uniform(-cfg.scale, cfg.scale))
    reach = cfg.partial_shift if rng.random() < cfg.partial else cfg.shift
    dx, dy = rng.uniform(-reach, reach, size=2) * size
    c = image.shape[0] / 2.0
    m = cv2.getRotationMatrix2D((c, c), rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                                zoom * size / inner)
    m[:, 2] += (size / 2.0 - c + dx, size / 2.0 - c + dy)
    flags = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    image = cv2.warpAffine(np.ascontiguousarray(image), m, (size, size),
                           flags=cv2.INTER_LINEAR, **flags)
    target = cv2.warpAffine(np.ascontiguousarray(target), m, (size, size),
                            flags=cv2.INTER_NEAREST, **flags)
    return image, target


def _photo_colour(x: np.ndarray, rng: np.random.Generator, cfg: PhotoConfig) -> np.ndarray:
    """White balance, exposure, gamma and skin-tone moves of float32 RGB in [0, 1]."""
    x = x * np.exp(rng.normal(0.0, cfg.white_balance, 3)).astype(np.float32)
    x = x * np.float32(2.0 ** rng.uniform(-cfg.exposure_stops, cfg.exposure_stops))
    x = np.clip(x, 0.0, 1.0)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg)) % 360.0
    hsv[..., 1] *= np.float32(math.exp(rng.uniform(-cfg.saturation, cfg.saturation)))
    x = cv2.cvtColor(np.clip(hsv, 0.0, [360.0, 1.0, 1.0]).astype(np.float32), cv2.COLOR_HSV2RGB)
    return np.clip(x, 0.0, 1.0) ** np.float32(math.exp(rng.uniform(-cfg.gamma, cfg.gamma)))


def _occlude(image: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> None:
    """An ellipse or bar of a flat colour with noise, in place; the target there is 0."""
    size = image.shape[0]
    shape = np.zeros(target.shape, np.uint8)
    centre = tuple(int(v) for v in rng.integers(0, size, 2))
    if rng.random() < 0.5:
        axes = tuple(int(v) for v in rng.integers(size // 16, size // 4, 2))
        cv2.ellipse(shape, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        end = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(shape, centre, end, 1, int(rng.integers(size // 40, size // 10)))
    colour = rng.uniform(0, 255, 3)
    fill = colour + rng.normal(0, 12, (size, size, 3))
    inside = shape > 0
    image[inside] = np.clip(fill[inside], 0, 255).astype(np.uint8)
    target[inside & (target != 255)] = 0


def augment_framed(
    image: np.ndarray,
    target: np.ndarray,
    size: int,
    inner: float,
    rng: np.random.Generator,
    cfg: PhotoConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A randomly changed ``size`` x ``size`` view of a stored square: ``image`` RGB uint8,
    ``target`` uint8 labels (0, 1, 255 = ignored; 0 where the view leaves the square)."""
    cfg = cfg or PhotoConfig()
    image, target = _framed_geometry(image, target, size, inner, rng, cfg)
    x = _photo_colour(image.astype(np.float32) * np.float32(1 / 255), rng, cfg)
    if rng.random() < cfg.blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < cfg.noise:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.04), x.shape).astype(np.float32)
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg:
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 90))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if rng.random() < cfg.occluder:
        _occlude(out, target, rng)
    return out, target
