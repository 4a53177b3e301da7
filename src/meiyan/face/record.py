"""The ``Face`` record: landmarks, box, head pose and named region masks of one face."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from meiyan._array import Mask
from meiyan.face.regions import REGIONS, region_mask


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees.

    ``yaw`` > 0: the person turns to their right (the face points toward the image's left), the
    sign convention of the Pointing'04 pan angles; ``pitch`` > 0: the person looks up; ``roll``
    > 0: the head tilts clockwise in the image.
    """

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class Face:
    """One face found in an image.

    ``landmarks``: ``(478, 2)`` float32 MediaPipe face-mesh points (with refined lips and irises)
    in pixel coordinates ``(x, y)`` of the full image; ``depth``: ``(478,)`` float32 relative
    depth in pixels (smaller is nearer the camera); ``bbox``: ``(x0, y0, x1, y1)`` of the
    landmarks in pixels; ``score``: detector confidence; ``image_shape``: ``(H, W)`` of the image
    the face was found in.
    """

    landmarks: np.ndarray
    depth: np.ndarray
    bbox: tuple[float, float, float, float]
    pose: Pose
    score: float
    image_shape: tuple[int, int]

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of ``bbox``."""
        x0, y0, x1, y1 = self.bbox
        return float(max(x1 - x0, y1 - y0))

    def rescaled(self, sx: float, sy: float, shape: tuple[int, int]) -> Face:
        """This face in the image resized by ``sx``, ``sy`` to ``shape`` ``(H, W)``, pixel
        centres kept aligned (OpenCV's ``resize`` convention)."""
        lm = (self.landmarks + 0.5) * np.array([sx, sy], np.float32) - 0.5
        x0, y0, x1, y1 = self.bbox
        return replace(
            self,
            landmarks=lm.astype(np.float32),
            depth=self.depth * np.float32(np.sqrt(sx * sy)),
            bbox=(
                (x0 + 0.5) * sx - 0.5,
                (y0 + 0.5) * sy - 0.5,
                (x1 + 0.5) * sx - 0.5,
                (y1 + 0.5) * sy - 0.5,
            ),
            image_shape=shape,
        )

    def points3d(self) -> np.ndarray:
        """``(478, 3)`` float32 landmarks ``(x, y, depth)`` in pixels."""
        return np.column_stack([self.landmarks, self.depth]).astype(np.float32)

    def region(self, name: str, feather: float | None = None) -> Mask:
        """Soft mask of the region ``name`` (one of ``REGIONS``) at image resolution.

        ``feather`` is the Gaussian sigma of the soft edge in pixels; ``None`` picks 1% of the
        face size, ``0`` gives an anti-aliased hard edge.
        """
        if feather is None:
            feather = 0.01 * self.size
        return region_mask(self.landmarks, name, self.image_shape, feather=feather)

    def regions(self, feather: float | None = None) -> dict[str, Mask]:
        """Every named region's mask, as :meth:`region` makes them."""
        return {name: self.region(name, feather) for name in REGIONS}
