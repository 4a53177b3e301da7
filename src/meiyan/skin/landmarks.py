"""The ``face`` skin segmenter: landmark geometry only.

Skin is each face's oval minus its eyes, eyebrows, lips and inner mouth, from the MediaPipe face
mesh (see :mod:`meiyan.face.regions`). It never takes hair for skin inside the oval's outline,
but it misses the neck, the ears and any skin beyond the face.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb
from meiyan.face import FEATURES, Face
from meiyan.face.regions import region_mask


def remove_features(
    mask: Mask, face: Face, feather: float, names: Sequence[str] = FEATURES
) -> Mask:
    """``mask`` (modified in place) with ``face``'s regions ``names`` cut out (by default the
    eyes, eyebrows, lips and inner mouth).

    The features are grown by ``feather`` pixels before their edge is softened with a Gaussian
    of that sigma, so that the soft edge lies on the skin side and the features stay at zero.
    """
    h, w = mask.shape
    pad = int(np.ceil(4 * feather)) + 2
    bx0, by0, bx1, by1 = face.bbox
    x0, y0 = max(int(bx0) - pad, 0), max(int(by0) - pad, 0)
    x1, y1 = min(int(np.ceil(bx1)) + pad + 1, w), min(int(np.ceil(by1)) + pad + 1, h)
    if x1 <= x0 or y1 <= y0:
        return mask
    lm = face.landmarks - np.array([x0, y0], np.float32)
    cut = region_mask(lm, names, (y1 - y0, x1 - x0))
    if feather > 0:
        r = max(1, round(feather))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        cut = cv2.GaussianBlur(cv2.dilate(cut, disk), (0, 0), feather)
    mask[y0:y1, x0:x1] *= 1.0 - np.clip(cut, 0.0, 1.0)
    return mask


class FaceSkinSegmenter(ABC):
    """Base of the segmenters that work from faces found beforehand (``meiyan.face.analyze``):
    :func:`meiyan.skin_mask` finds them once and falls back to the colour rule without one."""

    needs_faces = True

    @abstractmethod
    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        """Skin mask ``(H, W)`` float32 in [0, 1] of an RGB image with these faces."""


class LandmarkSkinSegmenter(FaceSkinSegmenter):
    """Face-oval skin masks from landmarks, soft-edged by ``feather`` face sizes."""

    def __init__(self, *, feather: float = 0.01) -> None:
        if feather < 0:
            raise ValueError(f"feather must be >= 0, got {feather}")
        self.feather = float(feather)

    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        check_rgb(image)
        shape = image.shape[:2]
        mask = np.zeros(shape, np.float32)
        for face in faces:
            skin = region_mask(face.landmarks, "face_oval", shape, feather=self.feather * face.size)
            np.maximum(mask, skin, out=mask)
        for face in faces:
            remove_features(mask, face, self.feather * face.size)
        return mask
