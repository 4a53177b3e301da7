"""Person (foreground) segmentation with MediaPipe selfie segmentation.

The general model (256x256 input) of MediaPipe 0.10.21, after the MobileNetV3-based design of
"MediaPipe Selfie Segmentation" (Google, model card 2021), run on a copy whose long side is
``size`` pixels and upsampled back, so that any image size costs the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb, from_float32
from meiyan._threads import pool, shared
from meiyan.errors import ModelError
from meiyan.face._mediapipe import solution
from meiyan.face._quiet import load_graph
from meiyan.face.window import shrink_area

if TYPE_CHECKING:
    from meiyan.face.record import Face

T = TypeVar("T")


class PersonSegmenter:
    """Soft person masks; the MediaPipe graph is created on first use and kept.

    Calls are serialised by a lock (MediaPipe graphs are not re-entrant).
    """

    def __init__(self, *, size: int = 512) -> None:
        if size < 16:
            raise ValueError(f"size must be at least 16, got {size}")
        self.size = int(size)
        self._lock = threading.Lock()
        self._graph: Any = None

    def __call__(self, image: np.ndarray) -> Mask:
        """Person probability ``(H, W)`` float32 in [0, 1] of an RGB image (uint8 or float32)."""
        h, w = image.shape[:2]
        mask = self.small(image)
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)

    def reduce(self, image: np.ndarray) -> np.ndarray:
        """The uint8 RGB copy of ``image`` that the model runs on: area-averaged to a long side
        of at most ``size`` (``image`` itself when it is uint8 and no larger). Stages that work
        at the person mask's size can reuse it instead of reducing the photo again."""
        check_rgb(image)
        h, w = image.shape[:2]
        scale = min(1.0, self.size / max(h, w))
        small = image
        if scale < 1.0:
            # Bilinear to twice the size, then 2 x 2 blocks: about 2 ms at 24 MP.
            small = shrink_area(image, (max(1, round(w * scale)), max(1, round(h * scale))))
        if small.dtype != np.uint8:
            small = from_float32(small, np.uint8)
        return small

    def small(self, image: np.ndarray) -> Mask:
        """Person probability at the model's working size (long side at most ``size``):
        float32 in [0, 1]; enlarge only the part that is needed."""
        return self.segment(self.reduce(image))

    def segment(self, small: np.ndarray) -> Mask:
        """Person probability of :meth:`reduce`'s copy, at its size: float32 in [0, 1]."""
        with self._lock:
            if self._graph is None:
                try:
                    selfie_segmentation = solution("selfie_segmentation")

                    self._graph = load_graph(
                        lambda: selfie_segmentation.SelfieSegmentation(model_selection=0),
                        "MediaPipe selfie segmentation",
                    )
                except ImportError as e:
                    raise ModelError(f"cannot load MediaPipe selfie segmentation: {e}") from e
            mask = self._graph.process(np.ascontiguousarray(small)).segmentation_mask
        return np.clip(np.asarray(mask, np.float32), 0.0, 1.0)


@shared
def default_person() -> PersonSegmenter:
    """The process-wide shared :class:`PersonSegmenter` (created on first call)."""
    return PersonSegmenter()


def person_mask(image: np.ndarray) -> Mask:
    """Soft person mask ``(H, W)`` float32 in [0, 1] with the shared :class:`PersonSegmenter`."""
    return default_person()(image)


def person_and_copy(image: np.ndarray) -> tuple[Mask, np.ndarray]:
    """The shared segmenter's person mask of ``image`` at its small size and the uint8 RGB
    copy it was worked out on (:meth:`PersonSegmenter.reduce`)."""
    segmenter = default_person()
    small = segmenter.reduce(image)
    return segmenter.segment(small), small


def analyze_beside(
    image: np.ndarray, job: Callable[[np.ndarray], T], *, min_face: float | None = None
) -> tuple[list[Face], T]:
    """:func:`meiyan.face.analyze` of ``image`` and ``job(image)``, the job on the shared pool
    while the face pass runs (which spreads its own graphs over two lanes: they share the
    cores)."""
    from meiyan.face.detect import DEFAULT_MIN_FACE, analyze

    future = pool().submit(job, image)
    faces = analyze(image, min_face=DEFAULT_MIN_FACE if min_face is None else min_face)
    return faces, future.result()


def analyze_with_person(
    image: np.ndarray, *, min_face: float | None = None, person: bool = True
) -> tuple[list[Face], Mask | None]:
    """:func:`meiyan.face.analyze` of ``image`` and, when ``person``, its person mask at the
    segmenter's small size (:meth:`PersonSegmenter.small`), worked out beside the face pass."""
    if not person:
        from meiyan.face.detect import DEFAULT_MIN_FACE, analyze

        return analyze(image, min_face=DEFAULT_MIN_FACE if min_face is None else min_face), None
    return analyze_beside(image, default_person().small, min_face=min_face)
