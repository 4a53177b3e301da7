"""Guided filter (He, Sun and Tang, 2013) with the fast subsampled variant."""

from __future__ import annotations

import cv2
import numpy as np

from meiyan._array import Float32Image, check_float_rgb
from meiyan._resample import reduce_blocks
from meiyan.filters._box import box_mean


def _check_params(radius: int, eps: float, subsample: int) -> None:
    if int(radius) != radius or radius < 1:
        raise ValueError(f"radius must be a positive integer, got {radius}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if int(subsample) != subsample or subsample < 1:
        raise ValueError(f"subsample must be a positive integer, got {subsample}")


def _coefficients_gray(I: np.ndarray, p: np.ndarray, r: int, eps: float):
    """Per-pixel linear model ``q = a * I + b`` for a one-channel guide (eqs. 5-6)."""
    mean_I = box_mean(I, r)
    mean_p = box_mean(p, r)
    if p.ndim == 3:
        mean_I3 = mean_I[..., None]
        cov_Ip = box_mean(I[..., None] * p, r) - mean_I3 * mean_p
        var_I = (box_mean(I * I, r) - mean_I * mean_I)[..., None]
        a = cov_Ip / (var_I + eps)
        b = mean_p - a * mean_I3
    else:
        cov_Ip = box_mean(I * p, r) - mean_I * mean_p
        var_I = box_mean(I * I, r) - mean_I * mean_I
        a = cov_Ip / (var_I + eps)
        b = mean_p - a * mean_I
    return box_mean(a, r), box_mean(b, r)


def _self_guided(p: np.ndarray, r: int, eps: float):
    """Each channel guides itself: ``a = var / (var + eps)``, ``b = (1 - a) * mean``."""
    mean_p = box_mean(p, r)
    var_p = box_mean(p * p, r) - mean_p * mean_p
    a = var_p / (var_p + eps)
    b = mean_p - a * mean_p
    return box_mean(a, r), box_mean(b, r)


def _coefficients_color(I: np.ndarray, p: np.ndarray, r: int, eps: float):
    """Linear model ``q = a . I + b`` for an RGB guide (eqs. 14-16): a 3x3 solve per pixel."""
    mean_I = box_mean(I, r)
    h, w = I.shape[:2]
    sigma = np.empty((h, w, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            v = box_mean(I[..., i] * I[..., j], r) - mean_I[..., i] * mean_I[..., j]
            sigma[..., i, j] = sigma[..., j, i] = v
    sigma += eps * np.eye(3, dtype=np.float32)
    inv = np.linalg.inv(sigma)
    a_all, b_all = [], []
    for c in range(p.shape[2]):
        pc = p[..., c]
        mean_pc = box_mean(pc, r)
        cov = box_mean(I * pc[..., None], r) - mean_I * mean_pc[..., None]
        a = np.einsum("hwij,hwj->hwi", inv, cov).astype(np.float32)
        b = mean_pc - (a * mean_I).sum(axis=2)
        a_all.append(box_mean(a, r))
        b_all.append(box_mean(b, r))
    return a_all, b_all


def guided(
    image: Float32Image,
    guide: np.ndarray | None = None,
    *,
    radius: int = 8,
    eps: float = 0.004,
    subsample: int = 1,
) -> Float32Image:
    """Edge-preserving guided filter of a float32 RGB image in [0, 1].

    K. He, J. Sun and X. Tang, "Guided Image Filtering", IEEE TPAMI 35(6), 2013. The output is
    locally a linear transform of the guide, ``q = a * I + b``, with ``a`` and ``b`` fitted by
    ridge regression over each ``(2r+1)^2`` window (regulariser ``eps``, on the [0, 1] scale,
    so edges with variance well above ``eps`` survive). Every step is a box filter, so the cost is
    O(1) per pixel in ``radius``.

    ``guide``: ``None`` lets each channel guide itself (the edge-preserving smoother); an
    ``(H, W)`` array is a grey guide, an ``(H, W, 3)`` array a colour guide (3x3 solve per pixel).
    ``subsample`` > 1 is the fast guided filter (K. He and J. Sun, "Fast Guided Filter",
    arXiv:1505.00996, 2015): coefficients are fitted on copies shrunk by ``subsample`` with the
    radius shrunk alike, then upsampled bilinearly and applied to the full-resolution guide, for
    about ``subsample**2`` times less work; ``subsample=1`` is the exact filter.
    """
    p = check_float_rgb(image)
    _check_params(radius, eps, subsample)
    if guide is not None:
        guide = np.ascontiguousarray(guide, dtype=np.float32)
        if guide.shape[:2] != p.shape[:2] or guide.ndim not in (2, 3):
            raise ValueError(f"guide must be (H, W) or (H, W, 3) like image, got {guide.shape}")
        if guide.ndim == 3 and guide.shape[2] != 3:
            raise ValueError(f"a colour guide must have 3 channels, got {guide.shape}")
    h, w = p.shape[:2]
    s = int(subsample)
    r = max(1, round(radius / s))
    small = (max(1, round(w / s)), max(1, round(h / s)))

    def shrink(x: np.ndarray) -> np.ndarray:
        return x if s == 1 else cv2.resize(x, small, interpolation=cv2.INTER_AREA)

    def grow(x: np.ndarray) -> np.ndarray:
        return x.copy() if s == 1 else cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)

    if guide is None:
        a, b = _self_guided(shrink(p), r, eps)
        q = grow(a)
        q *= p
        q += grow(b)
        return q
    if guide.ndim == 2:
        a, b = _coefficients_gray(shrink(guide), shrink(p), r, eps)
        q = grow(a)
        q *= guide[..., None]
        q += grow(b)
        return q
    a_all, b_all = _coefficients_color(shrink(guide), shrink(p), r, eps)
    out = np.empty_like(p)
    for c in range(3):
        out[..., c] = (grow(a_all[c]) * guide).sum(axis=2) + grow(b_all[c])
    return out


class FastGuidedRows:
    """The self-guided fast guided filter, evaluated a band of rows at a time.

    The coefficients ``a`` and ``b`` are fitted once on a copy shrunk by ``subsample`` (rows
    and columns mirror-padded to a multiple of it, so that both factors are exact and the
    reduction is OpenCV's quick whole-factor area averaging); :meth:`rows`
    upsamples just the coefficient rows a band needs, so a caller can stream a large image
    through the filter with band-sized temporaries that stay in cache. Bands give the same
    result as one whole-frame upsampling.
    """

    def __init__(self, image: np.ndarray, *, radius: int, eps: float, subsample: int) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.float32):
            raise ValueError(f"image must be (H, W, 3) uint8 or float32, got {image.shape}")
        _check_params(radius, eps, subsample)
        s = self.s = int(subsample)
        small = reduce_blocks(image, s, border=cv2.BORDER_REFLECT_101).astype(np.float32)
        self.w = s * small.shape[1]  # the padded width: bands are enlarged to it and cut
        if image.dtype == np.uint8:
            small *= np.float32(1.0 / 255.0)
        self._a, self._b = _self_guided(small, max(1, round(radius / s)), eps)

    def rows(self, p: Float32Image, y0: int, x0: int = 0) -> Float32Image:
        """Filtered rows ``y0 .. y0 + len(p)`` of the image, given those rows ``p`` (float32)
        of columns ``x0 .. x0 + p.shape[1]``."""
        s, y1 = self.s, y0 + p.shape[0]
        cols = slice(x0, x0 + p.shape[1])
        if s == 1:
            q = self._a[y0:y1, cols] * p
            q += self._b[y0:y1, cols]
            return q
        # Bilinear upsampling by an integer factor is shift-invariant by whole source rows:
        # resizing source rows k0..k1 reproduces the whole-frame result except within half a
        # cell of the cut ends, and a margin of one source row keeps those out of the band.
        # Columns are resized whole (the padded width) and then cut.
        k0 = max(0, y0 // s - 1)
        k1 = min(self._a.shape[0], (y1 - 1) // s + 2)
        size = (self.w, (k1 - k0) * s)
        band = slice(y0 - k0 * s, y1 - k0 * s)
        q = cv2.resize(self._a[k0:k1], size)[band, cols]
        q *= p
        q += cv2.resize(self._b[k0:k1], size)[band, cols]
        return q
