"""Validation and dtype conversion shared by every public function that takes an image.

Public APIs accept RGB images as ``uint8`` (0-255) or ``float32``/``float64`` (0-1) arrays of
shape ``(H, W, 3)``; processing happens in float32 and results go back to the caller's dtype.
"""

from __future__ import annotations

import cv2
import numpy as np

Float32Image = np.ndarray
"""``(H, W, 3)`` float32 RGB in [0, 1]."""
Mask = np.ndarray
"""``(H, W)`` float32 in [0, 1]."""


def rgb3(plane: np.ndarray) -> np.ndarray:
    """An ``(H, W)`` array as ``(H, W, 3)``, the plane in every channel, to combine with an RGB
    array: NumPy broadcasts ``plane[..., None]`` over a last axis of 3 about five times slower
    than it combines two arrays of one shape (6.6 against 1.4 ms, the copy included, for a
    multiply at 0.6 MP)."""
    plane = np.ascontiguousarray(plane)
    return cv2.merge([plane, plane, plane])


def check_rgb(image: np.ndarray, name: str = "image") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``image`` is a non-empty RGB array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    if image.dtype not in (np.uint8, np.float32, np.float64):
        raise TypeError(f"{name} must be uint8 or float32/float64, got {image.dtype}")


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """:func:`check_rgb`, and for float images finite values within [0, 1]; returns ``image``.

    A float image in 0-255 is the commonest mistake: it is named, not processed as if it were
    a bright image without a face.
    """
    check_rgb(image, name)
    if image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if lo < 0.0 or hi > 1.0:
            hint = " (divide 0-255 values by 255)" if hi > 1.0 else ""
            raise ValueError(
                f"{name} is {image.dtype} with values in [{lo:g}, {hi:g}]; float images must "
                f"lie in [0, 1]{hint}"
            )
    return image


def to_float32(image: np.ndarray, name: str = "image") -> Float32Image:
    """Validated float32 copy-or-view of an RGB image in [0, 1]."""
    check_rgb(image, name)
    if image.dtype == np.uint8:
        return np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32)
    if not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(image, dtype=np.float32)


def check_float_rgb(image: np.ndarray, name: str = "image") -> Float32Image:
    """Validate the float32 RGB input of a filter: shape, dtype, finite values."""
    check_rgb(image, name)
    if image.dtype != np.float32:
        raise TypeError(f"{name} must be float32 RGB in [0, 1], got {image.dtype}")
    # NaN and infinity make the sum non-finite, so one cheap reduction clears nearly every
    # image; only a non-finite sum (which huge finite values can also cause) needs the full test.
    if not np.isfinite(image.sum()) and not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(image)


def from_float32(x: Float32Image, dtype: np.dtype) -> np.ndarray:
    """Convert a float32 [0, 1] result back to the caller's dtype."""
    if dtype == np.uint8:
        # convertScaleAbs rounds and saturates; clamping at 0 first makes its abs() a no-op.
        return cv2.convertScaleAbs(np.maximum(x, np.float32(0.0)), alpha=255.0)
    return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)


def check_mask(mask: np.ndarray, shape: tuple[int, int], name: str = "mask") -> Mask:
    """Validate an ``(H, W)`` mask in [0, 1] (uint8 masks are scaled by 1/255)."""
    if not isinstance(mask, np.ndarray) or mask.shape != shape:
        got = getattr(mask, "shape", type(mask).__name__)
        raise ValueError(f"{name} must have shape {shape}, got {got}")
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False)
