"""Finding faces and their 478 face-mesh landmarks in images of any size.

Two stages, as in MediaPipe's own face-mesh pipeline, but run so that any image size works:

1. **Detection** (BlazeFace) on shrunk copies: the whole image with both the short-range and
   the full-range model, then, for faces too small to be seen there, overlapping square tiles
   that halve in size level by level (full-range model) until faces of ``min_face`` pixels are
   within reach. Boxes from every level are merged by non-maximum suppression.
2. **Landmarks** (face mesh with attention, 478 points with refined lips and irises) on a
   square crop around each box, resized to a fixed size, mapped back to image pixels; if the
   mesh misses the face, tighter and looser crops are tried.

V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran and M. Grundmann, "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR Workshops 2019; I. Grishchenko et
al., "Attention Mesh: High-fidelity Face Mesh Prediction in Real-time", CVPR Workshops 2020.

The MediaPipe graphs are created on first use and kept by the :class:`FaceDetector`, so create
one detector and reuse it (``default_detector()`` is a shared one). Stage 2 is a method of its
own, :meth:`FaceDetector.landmarks`, taking a box: a video tracker can feed it the previous
frame's face box instead of detecting again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from meiyan._array import check_rgb, from_float32
from meiyan.errors import ModelError
from meiyan.face._quiet import load_graph
from meiyan.face.pose import head_pose
from meiyan.face.record import Face

# Smallest face, as a fraction of the (letterboxed, square) input, that BlazeFace's full-range
# model finds; measured on the sample portrait (found at 0.069, lost at 0.047). Tiles are added
# until this fraction of a tile is below ``min_face``.
_FULL_RANGE_MIN = 0.08
_MIN_FACE_PX = 48.0  # default smallest face searched for: this many pixels ...
_MIN_FACE_FRACTION = 0.02  # ... or this fraction of the long side, whichever is larger
_LEVEL0_SIZE = 256  # long side of the copy the whole-image detectors see
_TILE_SIZE = 192  # the full-range model's input size
# Landmark crop sides, in detector-box sides, tried in turn until the mesh finds the face (the
# second and third rescue some profile faces).
_CROP_SCALES = (2.0, 1.6, 2.6)
_MESH_SIZE = 256  # landmark crops are resized to this square
_NMS_IOU = 0.3
_EDGE_MARGIN = 0.02  # boxes this close (fraction of a tile) to an inner tile edge are dropped


@dataclass(frozen=True)
class Detection:
    """A face box ``(x0, y0, x1, y1)`` in image pixels with the detector's score."""

    box: tuple[float, float, float, float]
    score: float


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms(dets: list[Detection], iou: float) -> list[Detection]:
    """Greedy non-maximum suppression, best score first."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_iou(d.box, k.box) <= iou for k in kept):
            kept.append(d)
    return kept


def tile_levels(height: int, width: int, min_face: float) -> list[list[tuple[int, int, int]]]:
    """Square tiles ``(x, y, side)`` per pyramid level below the whole image.

    Level sides halve from ``min(short side, long side / 2)``; tiles overlap by half a side, so a
    face up to half a side across lies wholly inside one tile. Levels are added while the
    previous level's smallest detectable face is larger than ``min_face`` pixels.
    """
    short, long = min(height, width), max(height, width)
    levels = []
    reach = _FULL_RANGE_MIN * long
    side = min(short, long // 2)
    while reach > min_face and side >= _TILE_SIZE / 2:
        stride = max(side // 2, 1)
        xs = sorted({*range(0, max(width - side, 0) + 1, stride), max(width - side, 0)})
        ys = sorted({*range(0, max(height - side, 0) + 1, stride), max(height - side, 0)})
        levels.append([(x, y, side) for y in ys for x in xs])
        reach = _FULL_RANGE_MIN * side
        side //= 2
    return levels


class FaceDetector:
    """Faces with 478 landmarks, head pose and regions in RGB images of any size.

    ``min_score``: detector confidence threshold; ``min_face``: smallest face side in pixels
    searched for (smaller faces may still be found; more tiles are scanned for small values);
    ``None`` means 48 pixels or 2% of the image's long side, whichever is larger, which keeps a
    24-megapixel photo to about 40 tiles.

    Thread safety: MediaPipe graphs are not re-entrant, so calls on one detector are serialised
    by a lock; use one detector per thread to run in parallel.
    """

    def __init__(self, *, min_score: float = 0.5, min_face: float | None = None) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        if min_face is not None and min_face <= 0:
            raise ValueError(f"min_face must be positive, got {min_face}")
        self.min_score = float(min_score)
        self.min_face = min_face
        self._lock = threading.Lock()
        self._graphs: dict[str, Any] = {}

    def _min_face(self, height: int, width: int) -> float:
        if self.min_face is not None:
            return float(self.min_face)
        return max(_MIN_FACE_PX, _MIN_FACE_FRACTION * max(height, width))

    def _graph(self, name: str) -> Any:
        """The MediaPipe solution ``name``, created on first use."""
        if name not in self._graphs:
            try:
                from mediapipe.python.solutions import face_detection, face_mesh

                if name == "mesh":
                    self._graphs[name] = load_graph(
                        lambda: face_mesh.FaceMesh(
                            static_image_mode=True,
                            max_num_faces=2,
                            refine_landmarks=True,
                            min_detection_confidence=self.min_score,
                        )
                    )
                else:
                    self._graphs[name] = load_graph(
                        lambda: face_detection.FaceDetection(
                            model_selection=1 if name == "full" else 0,
                            min_detection_confidence=self.min_score,
                        )
                    )
            except (ImportError, RuntimeError) as e:
                raise ModelError(f"cannot load MediaPipe face models: {e}") from e
        return self._graphs[name]

    def close(self) -> None:
        """Release the MediaPipe graphs (they are created again if the detector is reused)."""
        with self._lock:
            for graph in self._graphs.values():
                graph.close()
            self._graphs.clear()

    @staticmethod
    def _as_uint8(image: np.ndarray) -> np.ndarray:
        check_rgb(image)
        rgb = image if image.dtype == np.uint8 else from_float32(image, np.uint8)
        return np.ascontiguousarray(rgb)

    def _run_detector(
        self, name: str, image: np.ndarray, window: tuple[int, int, int, int]
    ) -> list[Detection]:
        """Detections of model ``name`` on ``image`` (a resized window ``x, y, w, h``)."""
        x, y, w, h = window
        result = self._graph(name).process(image)
        dets = []
        for d in result.detections or []:
            rb = d.location_data.relative_bounding_box
            box = (
                x + rb.xmin * w,
                y + rb.ymin * h,
                x + (rb.xmin + rb.width) * w,
                y + (rb.ymin + rb.height) * h,
            )
            dets.append(Detection(box=box, score=float(d.score[0])))
        return dets

    def find_boxes(self, image: np.ndarray) -> list[Detection]:
        """Stage 1: face boxes in an RGB image (uint8 or float32), merged over the pyramid."""
        rgb = self._as_uint8(image)
        with self._lock:
            return self._find_boxes(rgb)

    def _find_boxes(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        scale = min(1.0, _LEVEL0_SIZE / max(h, w))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        dets = self._run_detector("short", small, (0, 0, w, h))
        dets += self._run_detector("full", small, (0, 0, w, h))
        for level in tile_levels(h, w, self._min_face(h, w)):
            side = level[0][2]
            # One shrunk copy per level, so each tile is a slice at the model's input size.
            s = min(1.0, _TILE_SIZE / side)
            shrunk = rgb
            if s < 1.0:
                size = (max(1, round(w * s)), max(1, round(h * s)))
                shrunk = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            margin = _EDGE_MARGIN * side
            for tx, ty, _ in level:
                sx, sy = round(tx * s), round(ty * s)
                tile = np.ascontiguousarray(
                    shrunk[sy : sy + round(side * s), sx : sx + round(side * s)]
                )
                th, tw = tile.shape[0] / s, tile.shape[1] / s
                for d in self._run_detector("full", tile, (sx / s, sy / s, tw, th)):
                    x0, y0, x1, y1 = d.box
                    # A face cut by an inner tile edge is whole in a neighbouring tile.
                    cut = (
                        (tx > 0 and x0 < tx + margin)
                        or (ty > 0 and y0 < ty + margin)
                        or (tx + side < w and x1 > tx + side - margin)
                        or (ty + side < h and y1 > ty + side - margin)
                    )
                    if not cut:
                        dets.append(d)
        return _nms(dets, _NMS_IOU)

    def landmarks(self, image: np.ndarray, detection: Detection) -> Face | None:
        """Stage 2: the face inside ``detection`` with its landmarks, or ``None`` if none."""
        rgb = self._as_uint8(image)
        with self._lock:
            return self._landmarks(rgb, detection)

    def _mesh(self, rgb: np.ndarray, det: Detection, crop_scale: float) -> np.ndarray | None:
        """``(478, 3)`` landmarks ``(x, y, depth)`` in image pixels from one square crop."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = det.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(round(crop_scale * max(x1 - x0, y1 - y0)), 8)
        left, top = round(cx - side / 2), round(cy - side / 2)
        crop = rgb[max(top, 0) : min(top + side, h), max(left, 0) : min(left + side, w)]
        if crop.size == 0:
            return None
        crop = cv2.copyMakeBorder(
            crop,
            max(-top, 0),
            max(top + side - h, 0),
            max(-left, 0),
            max(left + side - w, 0),
            cv2.BORDER_CONSTANT,
            value=(0, 0, 0),
        )
        interp = cv2.INTER_AREA if side > _MESH_SIZE else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (_MESH_SIZE, _MESH_SIZE), interpolation=interp)
        result = self._graph("mesh").process(crop)
        best, best_dist = None, np.inf
        for face in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float64) * side
            pts[:, 0] += left
            pts[:, 1] += top
            dist = float(np.hypot(*(pts[:, :2].mean(axis=0) - (cx, cy))))
            if dist < best_dist:
                best, best_dist = pts, dist
        # The mesh must describe this detection, not a neighbouring face in the crop.
        if best is None or best_dist > max(x1 - x0, y1 - y0):
            return None
        return best

    def _landmarks(self, rgb: np.ndarray, det: Detection) -> Face | None:
        for crop_scale in _CROP_SCALES:
            pts = self._mesh(rgb, det, crop_scale)
            if pts is not None:
                break
        else:
            return None
        xy = pts[:, :2].astype(np.float32)
        bbox = (
            float(xy[:, 0].min()),
            float(xy[:, 1].min()),
            float(xy[:, 0].max()),
            float(xy[:, 1].max()),
        )
        return Face(
            landmarks=xy,
            depth=pts[:, 2].astype(np.float32),
            bbox=bbox,
            pose=head_pose(pts),
            score=det.score,
            image_shape=rgb.shape[:2],
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in an RGB image (uint8 or float32 in [0, 1]), left to right."""
        rgb = self._as_uint8(image)
        faces: list[Face] = []
        with self._lock:
            for det in self._find_boxes(rgb):
                face = self._landmarks(rgb, det)
                if face is not None and all(_iou(face.bbox, f.bbox) <= 0.5 for f in faces):
                    faces.append(face)
        return sorted(faces, key=lambda f: (f.bbox[0], f.bbox[1]))


_default: FaceDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> FaceDetector:
    """The process-wide shared :class:`FaceDetector` (created on first call)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceDetector()
        return _default


def detect_faces(image: np.ndarray) -> list[Face]:
    """Every face in an RGB image (uint8 or float32 in [0, 1]) with the shared detector."""
    return default_detector().detect(image)
