"""Piecewise-affine warp of one face onto another along the landmark Delaunay triangulation.

The target face's landmarks are triangulated (Delaunay, via :class:`scipy.spatial.Delaunay`);
each target pixel inside a triangle takes its barycentric coordinates to the same triangle of
the other face's landmarks, so every landmark lands on its counterpart and everything between
follows affinely: pose, expression and face shape may differ. This is the pose correction of
reference-based makeup transfer (e.g. T. Li et al., "BeautyGAN", ACM MM 2018, and W. Jiang et
al., "PSGAN: Pose and Expression Robust Spatial-Aware GAN for Customizable Makeup Transfer",
CVPR 2020, which warp or attend the reference along face landmarks).

Where the other face turns away, its triangles fold over (their orientation flips) or shrink
to slivers: the texture there is hidden or smeared, so :attr:`FaceWarp.valid` marks it with a
weight below 1 (0 for folded triangles), and callers weigh warped pixels by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from meiyan._array import Mask

# A triangle whose area, relative to the faces' overall scale, shrank below this fraction in
# the other face is foreshortened: its validity falls linearly to 0 with the area.
_FULL_AREA = 0.3
_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class FaceWarp:
    """Where each target pixel comes from in the other image, and how much to trust it.

    ``map_x``, ``map_y``: ``(H, W)`` float32 source coordinates (-1 outside the face);
    ``valid``: ``(H, W)`` float32 in [0, 1], 0 outside the face, in folded triangles and where
    the source point lies outside its image.
    """

    map_x: np.ndarray
    map_y: np.ndarray
    valid: Mask

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``image`` (the other face's picture, ``(h, w)`` or ``(h, w, C)`` float32) resampled
        (bilinear) onto the target grid; 0 outside the face."""
        return cv2.remap(
            np.ascontiguousarray(image, np.float32),
            self.map_x,
            self.map_y,
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )


def _signed_areas(pts: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    a, b, c = (pts[simplices[:, k]] for k in range(3))
    return 0.5 * (
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    )


def _affines(dst: np.ndarray, src: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Per triangle, the ``(2, 3)`` affine map taking its ``dst`` corners to its ``src`` ones."""
    d0, d1, d2 = (dst[simplices[:, k]] for k in range(3))
    s0, s1, s2 = (src[simplices[:, k]] for k in range(3))
    e1, e2 = d0 - d2, d1 - d2
    det = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    det = np.where(np.abs(det) > 1e-12, det, 1e-12)
    # Inverse of the 2x2 matrix [e1 e2]: barycentric coordinates (b0, b1) of a point.
    inv = np.stack([[e2[:, 1], -e2[:, 0]], [-e1[:, 1], e1[:, 0]]]) / det  # (2, 2, K)
    inv = inv.transpose(2, 0, 1)
    f = np.stack([s0 - s2, s1 - s2], axis=2)  # (K, 2, 2): columns s0 - s2, s1 - s2
    linear = f @ inv  # src - s2 = F @ inv @ (p - d2)
    offset = s2 - np.einsum("kij,kj->ki", linear, d2)
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def face_warp(
    from_points: np.ndarray,
    to_points: np.ndarray,
    to_shape: tuple[int, int],
    from_shape: tuple[int, int],
) -> FaceWarp:
    """The piecewise-affine map that puts ``from_points`` (pixels of an image of ``from_shape``
    ``(h, w)``) onto ``to_points`` (pixels of a target of ``to_shape`` ``(H, W)``).

    Both point sets are ``(N, 2)`` ``(x, y)`` with the same landmark order.
    """
    src = np.asarray(from_points, np.float64)
    dst = np.asarray(to_points, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 3:
        raise ValueError(f"need two (N, 2) point sets of one shape, got {src.shape}, {dst.shape}")
    h, w = int(to_shape[0]), int(to_shape[1])
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    valid = np.zeros((h, w), np.float32)
    x0, y0 = np.maximum(np.floor(dst.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(dst.max(axis=0)).astype(int) + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        return FaceWarp(map_x, map_y, valid)

    from scipy.spatial import Delaunay  # 0.5 s to import: only a reference's warp needs it

    tri = Delaunay(dst)
    area_to = _signed_areas(dst, tri.simplices)
    area_from = _signed_areas(src, tri.simplices)
    # The faces' overall scale: hull areas, so a smaller reference is not "foreshortened".
    scale = abs(area_from.sum()) / max(abs(area_to.sum()), 1e-9)
    ratio = area_from / np.where(np.abs(area_to) > 1e-9, area_to, 1e-9) / max(scale, 1e-9)
    trust = np.clip(ratio / _FULL_AREA, 0.0, 1.0)  # negative ratio: folded, 0

    # Which triangle each pixel centre lies in: each triangle rasterised with its index (what
    # Delaunay.find_simplex answers, but hundreds of times faster).
    label = np.full((y1 - y0, x1 - x0), -1, np.int32)
    corners_px = np.round((dst - (x0, y0)) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    for k, corners in enumerate(corners_px[tri.simplices]):
        cv2.fillConvexPoly(label, corners, k, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    inside = label >= 0
    # Each pixel's triangle's affine map, as six coefficient planes over the box.
    coef = _affines(dst, src, tri.simplices).reshape(-1, 6)[label]
    gx = np.arange(x0, x1, dtype=np.float64)
    gy = np.arange(y0, y1, dtype=np.float64)[:, None]
    mapped_x = coef[..., 0] * gx + coef[..., 1] * gy + coef[..., 2]
    mapped_y = coef[..., 3] * gx + coef[..., 4] * gy + coef[..., 5]
    box = slice(y0, y1), slice(x0, x1)
    map_x[box] = np.where(inside, mapped_x, -1.0)
    map_y[box] = np.where(inside, mapped_y, -1.0)
    fh, fw = int(from_shape[0]), int(from_shape[1])
    on_image = (
        inside & (mapped_x >= 0) & (mapped_x <= fw - 1) & (mapped_y >= 0) & (mapped_y <= fh - 1)
    )
    valid[box] = np.where(on_image, trust[label], 0.0)
    return FaceWarp(map_x, map_y, valid)
