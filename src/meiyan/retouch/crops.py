"""Face crops: find faces fast, work on each at a fixed working resolution, paste back.

As in ModelScope's ABPN skin-retouching pipeline, each face is cropped with a margin and
retouched on its own, so a 6000x4000 photo costs about as much as its faces. Unlike it, the crop
is not retouched pixel by pixel at full size: everything is *predicted* at a working resolution
(the face about ``WORK_FACE`` pixels across) as an additive smoothing layer and a soft-light
gain layer, and only applying them touches full-resolution pixels, which keep their own fine
texture. The layers, already multiplied by the crop's feathered skin mask (which fades to zero
inside the crop: there is no seam to see), are upsampled bilinearly band by band.

Faces are found on a reduced copy (:func:`find_faces`), which is what keeps detection cheap on
large photos: the shared MediaPipe detector scans tiles of the full frame for small faces,
seconds on a 24-megapixel photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from meiyan._array import Mask, from_float32, to_float32
from meiyan.face import Face, default_detector

WORK_FACE = 384
"""Face size (larger side of the landmark box) at the working resolution, in pixels."""

SMALL_FACE = 100
"""Faces smaller than this (pixels) get a warning and lighter processing."""

SEARCH_FLOOR = 0.02
"""Smallest face (share of the long side) searched for before a photo is called faceless."""

# Crop margins around the landmark box, in face sizes: neck below, ears and hairline around.
_MARGIN = 0.35
_MARGIN_BELOW = 0.5
_DETECTOR_MIN_FACE = 48.0  # the shared detector's own smallest face, in pixels of its input
_BAND = 64  # rows per band of the full-resolution pass


@dataclass(frozen=True)
class Crop:
    """A window ``box`` ``(x0, y0, x1, y1)`` of the image and its working-resolution size.

    ``face`` is the face it was made for (landmarks in image pixels), ``None`` for the whole
    frame; ``work`` ``(w, h)`` is the working image's size.
    """

    box: tuple[int, int, int, int]
    work: tuple[int, int]
    face: Face | None = None

    @property
    def scale(self) -> tuple[float, float]:
        """Image pixels per working pixel, ``(fx, fy)``."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) / self.work[0], (y1 - y0) / self.work[1]

    def to_work(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates ``(N, 2)`` to working pixel coordinates."""
        fx, fy = self.scale
        p = np.asarray(points, np.float64) - (self.box[0], self.box[1])
        return ((p + 0.5) / (fx, fy) - 0.5).astype(np.float32)

    @property
    def face_size(self) -> float:
        """The face's size in working pixels (for the whole frame: half its short side)."""
        fx, fy = self.scale
        if self.face is None:
            return 0.5 * min(self.work)
        return self.face.size / math.sqrt(fx * fy)




def find_faces(image: np.ndarray, min_face: float = 0.08) -> list[Face]:
    """Faces of at least ``min_face`` times the long side in an RGB image, left to right.

    The shared :func:`meiyan.face.default_detector` runs on a copy reduced so that such a face
    is the detector's smallest (48 pixels): one pass of its whole-image models at the default
    0.08, a few tiles more for smaller values. When that finds nothing, a second pass searches
    down to ``SEARCH_FLOOR`` before the photo is declared faceless. Landmarks come from the
    same copy (the face mesh sees a 128-pixel face whatever the source size) and are mapped
    back to image pixels.
    """
    if not 0 < min_face <= 1:
        raise ValueError(f"min_face must be in (0, 1], got {min_face}")
    faces = _find_faces(image, min_face)
    if not faces and min_face > SEARCH_FLOOR:
        faces = _find_faces(image, SEARCH_FLOOR)
    return faces


def _find_faces(image: np.ndarray, min_face: float) -> list[Face]:
    h, w = image.shape[:2]
    s = min(1.0, _DETECTOR_MIN_FACE / min_face / max(h, w))
    small = image
    if s < 1.0:
        step = max(1, int(0.5 / s))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = cv2.resize(image[::step, ::step], size, interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    detector = default_detector()
    faces = []
    for det in detector.find_boxes(small):
        face = detector.landmarks(small, det)
        if face is None:
            continue
        if s < 1.0:
            lm = (face.landmarks + 0.5) * np.array([sx, sy], np.float32) - 0.5
            x0, y0, x1, y1 = face.bbox
            face = replace(
                face,
                landmarks=lm.astype(np.float32),
                depth=face.depth * np.float32(math.sqrt(sx * sy)),
                bbox=(
                    (x0 + 0.5) * sx - 0.5,
                    (y0 + 0.5) * sy - 0.5,
                    (x1 + 0.5) * sx - 0.5,
                    (y1 + 0.5) * sy - 0.5,
                ),
                image_shape=(h, w),
            )
        faces.append(face)
    return sorted(faces, key=lambda f: (f.bbox[0], f.bbox[1]))


def face_crop(face: Face, shape: tuple[int, int], work_face: int = WORK_FACE) -> Crop:
    """The crop of ``face`` in an image of ``shape`` ``(H, W)``: box with margin, working size.

    Faces larger than ``work_face`` are reduced to it; smaller ones are worked on as they are.
    """
    h, w = shape
    x0, y0, x1, y1 = face.bbox
    size = face.size
    box = (
        max(0, math.floor(x0 - _MARGIN * size)),
        max(0, math.floor(y0 - _MARGIN * size)),
        min(w, math.ceil(x1 + _MARGIN * size) + 1),
        min(h, math.ceil(y1 + _MARGIN_BELOW * size) + 1),
    )
    return Crop(box, _work_size(box, max(1.0, size / work_face)), face)


def frame_crop(shape: tuple[int, int], work_face: int = WORK_FACE) -> Crop:
    """The whole frame as one crop, its (assumed) face half the short side across."""
    h, w = shape
    box = (0, 0, w, h)
    return Crop(box, _work_size(box, max(1.0, 0.5 * min(h, w) / work_face)))


def _work_size(box: tuple[int, int, int, int], f: float) -> tuple[int, int]:
    x0, y0, x1, y1 = box
    return max(1, round((x1 - x0) / f)), max(1, round((y1 - y0) / f))


def working_image(image: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop of an RGB image (uint8 or float32) at working resolution, float32 in [0, 1]."""
    x0, y0, x1, y1 = crop.box
    region = image[y0:y1, x0:x1]
    if crop.work != (x1 - x0, y1 - y0):
        region = cv2.resize(region, crop.work, interpolation=cv2.INTER_AREA)
    return to_float32(region)


def upsample_window(
    src: np.ndarray,
    scale: tuple[float, float],
    start: tuple[float, float],
    size: tuple[int, int],
    src_origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Bilinear samples of a working-resolution array on a window of image pixels.

    The window has ``size`` ``(w, h)`` and starts at ``start`` (image pixels relative to the
    crop's corner); ``src`` holds working pixels from ``src_origin`` on. Pixel centres follow
    OpenCV's ``resize`` convention, so windows tile into exactly the whole upsampled image.
    Borders are replicated.
    """
    fx, fy = scale
    m = np.array(
        [
            [1.0 / fx, 0.0, (start[0] + 0.5) / fx - 0.5 - src_origin[0]],
            [0.0, 1.0 / fy, (start[1] + 0.5) / fy - 0.5 - src_origin[1]],
        ],
        np.float64,
    )
    return cv2.warpAffine(
        src,
        m,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def full_mask(mask: Mask, crop: Crop) -> Mask:
    """A working-resolution mask of ``crop`` at the crop's full resolution."""
    x0, y0, x1, y1 = crop.box
    return upsample_window(mask, crop.scale, (0, 0), (x1 - x0, y1 - y0))


def support(mask: Mask, pad: int) -> tuple[int, int, int, int] | None:
    """Box ``(x0, y0, x1, y1)`` around the pixels where ``mask`` > 0, widened by ``pad``."""
    rows = np.nonzero(mask.max(axis=1) > 0)[0]
    if rows.size == 0:
        return None
    cols = np.nonzero(mask.max(axis=0) > 0)[0]
    h, w = mask.shape
    return (
        max(0, int(cols[0]) - pad),
        max(0, int(rows[0]) - pad),
        min(w, int(cols[-1]) + pad + 1),
        min(h, int(rows[-1]) + pad + 1),
    )


def paste(
    image: np.ndarray,
    crop: Crop,
    window: tuple[int, int, int, int],
    mask: Mask,
    delta: np.ndarray | None,
    gain: np.ndarray | None,
) -> None:
    """Apply layers predicted at low resolution to the crop of ``image`` (changed in place).

    ``window`` ``(x0, y0, x1, y1)``: the part of the crop's working image that the layers span,
    each at its own resolution (``mask`` and ``delta`` at working resolution, ``gain`` at any),
    both already multiplied by the skin mask. Per pixel: ``p = x + delta``, then
    ``p + gain * p * (1 - p)`` (the soft-light blend of :mod:`meiyan.retouch.blend`), with the
    layers upsampled bilinearly. Work runs in bands of rows, each only as wide as the mask's
    support in it; outside the mask's support nothing is touched.
    """
    cx0, cy0, cx1, cy1 = crop.box
    fx, fy = crop.scale
    wx0, wy0, wx1, wy1 = window
    # Full-resolution edges of the window, relative to the crop's corner.
    ex0, ey0, ex1, ey1 = wx0 * fx, wy0 * fy, wx1 * fx, wy1 * fy

    def place(layer: np.ndarray, start: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        px, py = (ex1 - ex0) / layer.shape[1], (ey1 - ey0) / layer.shape[0]
        return upsample_window(layer, (px, py), start, size, (ex0 / px, ey0 / py))

    rows = np.nonzero(mask.max(axis=1) > 0)[0]
    if rows.size == 0:
        return
    inside = mask > 0
    top = max(0, math.floor((wy0 + rows[0] - 1 + 0.5) * fy - 0.5))
    bottom = min(cy1 - cy0, math.ceil((wy0 + rows[-1] + 1 + 0.5) * fy + 0.5))
    for b0 in range(top, bottom, _BAND):
        b1 = min(bottom, b0 + _BAND)
        r0 = max(0, math.floor((b0 + 0.5) / fy - 0.5) - 1 - wy0)
        r1 = min(mask.shape[0], math.ceil((b1 + 0.5) / fy - 0.5) + 2 - wy0)
        cols = np.nonzero(inside[r0:r1].any(axis=0))[0] if r1 > r0 else np.zeros(0, int)
        if cols.size == 0:
            continue
        c0 = max(0, math.floor((wx0 + cols[0] - 1 + 0.5) * fx - 0.5))
        c1 = min(cx1 - cx0, math.ceil((wx0 + cols[-1] + 1 + 0.5) * fx + 0.5))
        start, size = (c0, b0), (c1 - c0, b1 - b0)
        region = image[cy0 + b0 : cy0 + b1, cx0 + c0 : cx0 + c1]
        p = to_float32(region)
        if delta is not None:
            p += place(delta, start, size)
        if gain is not None:
            p += place(gain, start, size) * p * (np.float32(1.0) - p)
        region[:] = from_float32(p, image.dtype)


__all__ = [
    "SEARCH_FLOOR",
    "SMALL_FACE",
    "WORK_FACE",
    "Crop",
    "face_crop",
    "find_faces",
    "frame_crop",
    "full_mask",
    "paste",
    "support",
    "upsample_window",
    "working_image",
]
