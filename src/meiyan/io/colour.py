"""Converting photos tagged with an RGB ICC profile (Display P3, Adobe RGB, ...) to sRGB and back.

Matrix/TRC display profiles (ICC.1:2010 section 8.3: rXYZ, gXYZ, bXYZ colorants and rTRC, gTRC,
bTRC tone curves, the PCS being D50 XYZ) are what cameras and phones embed. A pixel is decoded
by its curves, mapped through the colorant matrix to XYZ and from there to linear sRGB with the
D50-adapted sRGB matrix (IEC 61966-2-1, Bradford-adapted as in the ICC's own sRGB profile), then
encoded with the sRGB curve; writing runs the same steps backwards. Work runs in float32 bands.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import numpy as np

# Linear sRGB -> XYZ (D50 PCS): the colorants of the ICC's sRGB profile.
_SRGB_TO_XYZ = np.array(
    [[0.4360747, 0.3850649, 0.1430804],
     [0.2225045, 0.7168786, 0.0606169],
     [0.0139322, 0.0971045, 0.7141733]]
)  # fmt: skip
_GRID = np.linspace(0.0, 1.0, 4097)
_BAND_ROWS = 256


class ProfileError(ValueError):
    """An ICC profile that is not a readable RGB matrix/TRC profile."""


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def _s15(data: bytes, offset: int, count: int) -> list[float]:
    return [v / 65536.0 for v in struct.unpack_from(f">{count}i", data, offset)]


def _curve(icc: bytes, offset: int) -> np.ndarray:
    """A tone curve (``curv`` or ``para`` type) sampled on ``_GRID``: encoded -> linear."""
    kind = icc[offset : offset + 4]
    if kind == b"curv":
        (n,) = struct.unpack_from(">I", icc, offset + 8)
        if n == 0:
            return _GRID.copy()
        if n == 1:
            return _GRID ** (struct.unpack_from(">H", icc, offset + 12)[0] / 256.0)
        table = np.frombuffer(icc, ">u2", n, offset + 12).astype(np.float64) / 65535.0
        return np.interp(_GRID, np.linspace(0.0, 1.0, n), table)
    if kind == b"para":
        (fn,) = struct.unpack_from(">H", icc, offset + 8)
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(fn)
        if count is None:
            raise ProfileError(f"unknown parametric curve type {fn}")
        g, a, b, c, d, e, f = [*_s15(icc, offset + 12, count), 0, 0, 0, 0, 0, 0][:7]
        x = _GRID
        if fn == 0:
            return x**g
        if fn == 1:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g, 0.0)
        if fn == 2:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g + c, c)
        if fn == 3:
            return np.where(x >= d, np.maximum(a * x + b, 0) ** g, c * x)
        return np.where(x >= d, np.maximum(a * x + b, 0) ** g + e, c * x + f)
    raise ProfileError(f"unsupported tone curve type {kind!r}")


@dataclass(frozen=True)
class MatrixProfile:
    """An RGB matrix/TRC profile: per-channel curves (encoded -> linear) and linear -> sRGB."""

    curves: np.ndarray
    """``(3, len(_GRID))`` linear values of each channel on an even grid of encoded values."""
    to_srgb: np.ndarray
    """``(3, 3)`` linear profile RGB -> linear sRGB."""

    @property
    def is_srgb(self) -> bool:
        """Whether this profile is sRGB within the precision of ICC's fixed-point numbers."""
        srgb = _srgb_decode(_GRID)
        return bool(
            np.abs(self.to_srgb - np.eye(3)).max() < 4e-3
            and np.abs(self.curves - srgb).max() < 4e-3
        )


@functools.lru_cache(maxsize=16)
def parse_profile(icc: bytes) -> MatrixProfile:
    """The matrix/TRC part of an RGB ICC profile; ``ProfileError`` when it has none."""
    try:
        if len(icc) < 132 or icc[16:20] != b"RGB " or icc[20:24] != b"XYZ ":
            raise ProfileError("not an RGB display profile with an XYZ connection space")
        (count,) = struct.unpack_from(">I", icc, 128)
        tags = {}
        for i in range(count):
            sig, off, _size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            tags[sig] = off
        need = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
        if not all(t in tags for t in need):
            raise ProfileError("no matrix/TRC tags (a LUT-based profile)")
        colorants = np.array([_s15(icc, tags[t] + 8, 3) for t in need[:3]]).T
        curves = np.stack([_curve(icc, tags[t]) for t in need[3:]])
    except (struct.error, ValueError, ZeroDivisionError) as e:
        raise ProfileError(f"unreadable ICC profile ({e})") from e
    to_srgb = np.linalg.solve(_SRGB_TO_XYZ, colorants)
    if not np.isfinite(curves).all() or not np.isfinite(to_srgb).all():
        raise ProfileError("ICC profile with non-finite values")
    return MatrixProfile(np.maximum.accumulate(curves, axis=1), to_srgb)


def _bands(a: np.ndarray):
    for y in range(0, a.shape[0], _BAND_ROWS):
        yield slice(y, y + _BAND_ROWS)


def to_srgb(pixels: np.ndarray, profile: MatrixProfile) -> np.ndarray:
    """``(H, W, 3)`` uint8/uint16 pixels in ``profile``'s space -> the same dtype in sRGB."""
    top = np.iinfo(pixels.dtype).max
    codes = np.arange(top + 1) / top
    luts = np.stack([np.interp(codes, _GRID, c) for c in profile.curves]).astype(np.float32)
    matrix = profile.to_srgb.T.astype(np.float32)
    out = np.empty_like(pixels)
    for band in _bands(pixels):
        p = pixels[band]
        linear = np.stack([luts[c][p[..., c]] for c in range(3)], axis=-1) @ matrix
        out[band] = np.rint(_srgb_encode(linear) * top).astype(pixels.dtype)
    return out


def from_srgb(pixels: np.ndarray, profile: MatrixProfile) -> np.ndarray:
    """Inverse of :func:`to_srgb`: sRGB uint8/uint16 pixels -> ``profile``'s space."""
    top = np.iinfo(pixels.dtype).max
    lut = _srgb_decode(np.arange(top + 1) / top).astype(np.float32)
    matrix = np.linalg.inv(profile.to_srgb).T.astype(np.float32)
    out = np.empty_like(pixels)
    for band in _bands(pixels):
        linear = np.clip(lut[pixels[band]] @ matrix, 0.0, 1.0)
        for c in range(3):
            encoded = np.interp(linear[..., c], profile.curves[c], _GRID)
            out[band][..., c] = np.rint(encoded * top).astype(pixels.dtype)
    return out
