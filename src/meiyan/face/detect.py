"""The one face pass: faces and their 478 face-mesh landmarks in images of any size.

Two stages, as in MediaPipe's own face-mesh pipeline, but run so that any image size is cheap:

1. **Detection** (BlazeFace) on a copy shrunk so that the smallest face asked for
   (``min_face``, a share of the long side) is 48 pixels across: the whole copy with both the
   short-range and the full-range model, plus, only when such faces are too small for the whole
   copy (``min_face`` under about 0.08), overlapping square tiles that halve in size level by
   level. Boxes from every level are merged by non-maximum suppression. A photo where nothing is
   found at the default is searched once more down to :data:`SEARCH_FLOOR`.
2. **Landmarks** (face mesh with attention, 478 points with refined lips and irises) on a
   square crop around each box, taken from the shrunk copy when it has enough pixels for the
   mesh's input and from the full image otherwise, mapped back to image pixels; if the mesh
   misses the face, tighter and looser crops are tried.

V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran and M. Grundmann, "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR Workshops 2019; I. Grishchenko et
al., "Attention Mesh: High-fidelity Face Mesh Prediction in Real-time", CVPR Workshops 2020.

The MediaPipe graphs are created on first use and kept by the :class:`FaceDetector`, so create
one detector and reuse it (:func:`analyze` uses a shared one). Stage 2 is a method of its own,
:meth:`FaceDetector.landmarks`, taking a box: a video tracker can feed it the previous frame's
face box instead of detecting again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np

from meiyan._array import check_rgb, from_float32
from meiyan._threads import pool, shared, thread_count
from meiyan.errors import ModelError
from meiyan.face._mediapipe import solution
from meiyan.face._quiet import load_graph
from meiyan.face.pose import head_pose
from meiyan.face.record import Face

# Smallest face, as a fraction of the (letterboxed, square) input, that BlazeFace's full-range
# model finds; measured on the sample portrait (found at 0.069, lost at 0.047). Tiles are added
# until this fraction of a tile is below the smallest face searched for.
_FULL_RANGE_MIN = 0.08
_DETECTOR_MIN_FACE = 48.0  # the smallest face, in pixels of the shrunk copy, that is searched for
DEFAULT_MIN_FACE = 0.08
"""Smallest face searched for by default, as a share of the image's long side: one pass of the
whole-image detectors, no tiles."""
SEARCH_FLOOR = 0.02
"""Smallest face searched for before a photo is called faceless."""
_LEVEL0_SIZE = 256  # long side of the copy the short-range detector sees
_TILE_SIZE = 192  # the full-range model's input size
_SHORT_SIZE = 128  # the short-range model's input size
# Score the short-range model's finds on a square must reach: it sees faces there that are
# smaller than it was made for, and at the detector's own 0.5 it took a patch of a colourful
# background for a face (bench/faces.py; 0.6 to 0.8 find the same faces there).
_SQUARE_SHORT_SCORE = 0.7
# Landmark crop sides, in detector-box sides, tried in turn until the mesh finds the face (the
# second and third rescue some profile faces).
_CROP_SCALES = (2.0, 1.6, 2.6)
_MESH_SIZE = 256  # landmark crops are resized to this square
_NMS_IOU = 0.3
_LANES = 2
"""Graph runs of one face pass are spread over this many threads at most (one set of MediaPipe
graphs each: a graph runs on one core, and it is not re-entrant)."""
# Relative cost of one run of each graph (2-core machine: full range 8.5 ms, short range 3.4,
# mesh 12), to balance the lanes.
_COST = {"full": 2.5, "short": 1.0, "mesh": 3.5}
_EDGE_MARGIN = 0.02  # boxes this close (fraction of a tile) to an inner tile edge are dropped

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class _Run:
    """One detector run: ``model`` on ``image``, a resized ``window`` ``(x, y, w, h)`` of the
    photo; ``keep`` filters its detections."""

    model: str
    image: np.ndarray
    window: tuple[float, float, float, float]
    keep: Callable[[Detection], bool] | None = None


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


def _shrink(image: np.ndarray, s: float) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` shrunk ``s`` times (``s < 1``) for the detector, and the ``(rows, columns)``
    of ``image`` that the copy covers.

    Where the shrink is large, every ``step``-th pixel is taken first (area resampling then
    reads fewer pixels for the same result to within noise). OpenCV's area resampling is slow
    at a fractional factor (8 ms for 1080p to 600 pixels on 2 cores) and fast at a whole one
    (0.5 ms): the rest of the shrink is a whole factor, over the rows and columns that it
    divides (up to ``factor - 1`` of each are left out at the bottom and right edges), and then
    the small remainder (under 2x) bilinearly: 0.5 ms where area resampling took 3 at 1080p.
    """
    h, w = image.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))
    step = max(1, int(0.5 / s))
    image = image[::step, ::step]
    hs, ws = image.shape[:2]
    k = max(1, int(1.0 / (s * step)))
    ch, cw = hs // k * k, ws // k * k
    if k > 1:
        image = cv2.resize(image[:ch, :cw], (cw // k, ch // k), interpolation=cv2.INTER_AREA)
    if image.shape[1::-1] != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image, (h if ch == hs else ch * step, w if cw == ws else cw * step)


def _sure_on_square(d: Detection) -> bool:
    """Whether a short-range find on a square is sure enough (see _SQUARE_SHORT_SCORE)."""
    return d.score >= _SQUARE_SHORT_SCORE


def _whole_in_tile(tx: int, ty: int, side: int, h: int, w: int) -> Callable[[Detection], bool]:
    """Whether a detection in the tile at ``(tx, ty)`` keeps clear of its inner edges: a face
    cut by an inner tile edge is whole in a neighbouring tile."""
    margin = _EDGE_MARGIN * side

    def keep(d: Detection) -> bool:
        x0, y0, x1, y1 = d.box
        return not (
            (tx > 0 and x0 < tx + margin)
            or (ty > 0 and y0 < ty + margin)
            or (tx + side < w and x1 > tx + side - margin)
            or (ty + side < h and y1 > ty + side - margin)
        )

    return keep


def tile_levels(height: int, width: int, min_face: float) -> list[list[tuple[int, int, int]]]:
    """Square tiles ``(x, y, side)`` per pyramid level below the whole image.

    Level sides halve from ``min(short side, long side / 2)``; tiles overlap by half a side, so a
    face up to half a side across lies wholly inside one tile. Levels are added while the
    previous level's smallest detectable face is larger than ``min_face`` pixels.
    """
    short, long = min(height, width), max(height, width)
    levels = []
    reach = _FULL_RANGE_MIN * short  # the whole-image level: squares of the short side
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

    ``min_score``: detector confidence threshold. Each call of :meth:`analyze` counts as one
    detection in ``calls`` (tests check that every job detects once per image).

    Thread safety: MediaPipe graphs are not re-entrant, so calls on one detector are serialised
    by a lock; use one detector per thread to run in parallel. Inside a call, the detector and
    mesh runs are spread over two threads (the caller's and one of the shared pool's, each
    with its own set of graphs, made on first use): a graph runs on one core.
    """

    def __init__(self, *, min_score: float = 0.5) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        self.min_score = float(min_score)
        self.calls = 0
        self._lock = threading.Lock()
        self._graphs: dict[tuple[str, int], Any] = {}

    def _graph(self, name: str, lane: int = 0) -> Any:
        """Lane ``lane``'s MediaPipe solution ``name``, created on first use."""
        key = (name, lane)
        if key not in self._graphs:
            try:
                face_detection, face_mesh = solution("face_detection"), solution("face_mesh")

                if name == "mesh":
                    self._graphs[key] = load_graph(
                        lambda: face_mesh.FaceMesh(
                            static_image_mode=True,
                            max_num_faces=2,
                            refine_landmarks=True,
                            min_detection_confidence=self.min_score,
                        ),
                        "MediaPipe face models",
                    )
                else:
                    self._graphs[key] = load_graph(
                        lambda: face_detection.FaceDetection(
                            model_selection=1 if name == "full" else 0,
                            min_detection_confidence=self.min_score,
                        ),
                        "MediaPipe face models",
                    )
            except ImportError as e:
                raise ModelError(f"cannot load MediaPipe face models: {e}") from e
        return self._graphs[key]

    def _in_lanes(
        self, fn: Callable[[T, int], R], items: Sequence[T], costs: Sequence[float]
    ) -> list[R]:
        """``fn(item, lane)`` for each item, in order; the items are spread over up to
        :data:`_LANES` threads (the caller's and the shared pool's), largest cost first to
        the least loaded lane, each lane with its own graphs."""
        lanes = min(_LANES, thread_count(), len(items))
        if lanes <= 1:
            return [fn(item, 0) for item in items]
        load, plan = [0.0] * lanes, [[] for _ in range(lanes)]
        for i in sorted(range(len(items)), key=lambda i: -costs[i]):
            lane = load.index(min(load))
            load[lane] += costs[i]
            plan[lane].append(i)

        def run(lane: int) -> list[tuple[int, R]]:
            return [(i, fn(items[i], lane)) for i in plan[lane]]

        others = [pool().submit(run, lane) for lane in range(1, lanes)]
        try:
            done = run(0)
        finally:
            wait(others)  # no lane may still be using its graphs when the lock is released
        for other in others:
            done += other.result()
        return [r for _, r in sorted(done, key=lambda t: t[0])]

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

    def _run_detector(self, run: _Run, lane: int = 0) -> list[Detection]:
        """The kept detections of one run, with lane ``lane``'s graph."""
        x, y, w, h = run.window
        result = self._graph(run.model, lane).process(run.image)
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
        return [d for d in dets if run.keep is None or run.keep(d)]

    def find_boxes(self, image: np.ndarray) -> list[Detection]:
        """Stage 1 at full size: face boxes of 48 pixels and more in an RGB image (uint8 or
        float32), merged over the pyramid."""
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
        runs = [_Run("short", small, (0, 0, w, h))]
        # The full-range model on squares of the short side: a letterbox of a wide photo would
        # spend its input on padding (a 16:9 frame's faces would be 0.56 times as large). On a
        # photo of several squares the short-range model looks at each too: it finds faces
        # that the frame's edge cuts, which the full-range one misses.
        short, long = min(h, w), max(h, w)
        n = math.ceil(long / short)
        for i in range(n):
            at = round(i * (long - short) / max(n - 1, 1))
            x, y = (at, 0) if w >= h else (0, at)
            square = np.ascontiguousarray(rgb[y : y + short, x : x + short])
            if short > _TILE_SIZE:
                square = cv2.resize(square, (_TILE_SIZE, _TILE_SIZE), interpolation=cv2.INTER_AREA)
            runs.append(_Run("full", square, (x, y, short, short)))
            if n > 1:
                if short > _SHORT_SIZE:
                    square = cv2.resize(square, (_SHORT_SIZE,) * 2, interpolation=cv2.INTER_AREA)
                runs.append(_Run("short", square, (x, y, short, short), _sure_on_square))
        for level in tile_levels(h, w, _DETECTOR_MIN_FACE):
            side = level[0][2]
            # One shrunk copy per level, so each tile is a slice at the model's input size.
            s = min(1.0, _TILE_SIZE / side)
            shrunk = rgb
            if s < 1.0:
                size = (max(1, round(w * s)), max(1, round(h * s)))
                shrunk = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            for tx, ty, _ in level:
                sx, sy = round(tx * s), round(ty * s)
                tile = np.ascontiguousarray(
                    shrunk[sy : sy + round(side * s), sx : sx + round(side * s)]
                )
                th, tw = tile.shape[0] / s, tile.shape[1] / s
                runs.append(
                    _Run("full", tile, (sx / s, sy / s, tw, th), _whole_in_tile(tx, ty, side, h, w))
                )
        found = self._in_lanes(self._run_detector, runs, [_COST[r.model] for r in runs])
        dets = [d for ds in found for d in ds]
        return _nms(dets, _NMS_IOU)

    def landmarks(self, image: np.ndarray, detection: Detection) -> Face | None:
        """Stage 2: the face inside ``detection`` with its landmarks, or ``None`` if none."""
        check_rgb(image)
        with self._lock:
            return self._landmarks(image, detection)

    def _mesh(
        self, rgb: np.ndarray, det: Detection, crop_scale: float, lane: int = 0
    ) -> np.ndarray | None:
        """``(478, 3)`` landmarks ``(x, y, depth)`` in image pixels from one square crop."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = det.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(round(crop_scale * max(x1 - x0, y1 - y0)), 8)
        left, top = round(cx - side / 2), round(cy - side / 2)
        crop = rgb[max(top, 0) : min(top + side, h), max(left, 0) : min(left + side, w)]
        if crop.size == 0:
            return None
        if crop.dtype != np.uint8:
            crop = from_float32(crop, np.uint8)
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
        result = self._graph("mesh", lane).process(crop)
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

    def _landmarks(self, rgb: np.ndarray, det: Detection, lane: int = 0) -> Face | None:
        for crop_scale in _CROP_SCALES:
            pts = self._mesh(rgb, det, crop_scale, lane)
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

    def analyze(self, image: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[Face]:
        """Every face of at least ``min_face`` times the long side in an RGB image (uint8, or
        float in [0, 1]), left to right, in image pixels.

        Detection runs on a copy where such a face is 48 pixels across: at the default 0.08 one
        pass of the whole-image models, a few tiles more for smaller values. When that finds
        nothing, a second pass searches down to :data:`SEARCH_FLOOR`.
        """
        check_rgb(image)
        if not 0 < min_face <= 1:
            raise ValueError(f"min_face must be in (0, 1], got {min_face}")
        with self._lock:
            self.calls += 1
            faces = self._analyze(image, min_face)
            if not faces and min_face > SEARCH_FLOOR:
                faces = self._analyze(image, SEARCH_FLOOR)
        return faces

    def _analyze(self, image: np.ndarray, min_face: float) -> list[Face]:
        h, w = image.shape[:2]
        s = min(1.0, _DETECTOR_MIN_FACE / min_face / max(h, w))
        small, (ch, cw) = image, (h, w)
        if s < 1.0:
            small, (ch, cw) = _shrink(image, s)
        small = self._as_uint8(small)
        # Image pixels per pixel of the copy (which may leave out the last few rows and columns).
        sx, sy = cw / small.shape[1], ch / small.shape[0]
        # Each box's mesh, from the shrunk copy or, where a face has too few pixels there for
        # the mesh's input, from the full image.
        jobs: list[tuple[np.ndarray, Detection, bool]] = []
        for det in self._find_boxes(small):
            x0, y0, x1, y1 = det.box
            if s < 1.0 and _CROP_SCALES[0] * max(x1 - x0, y1 - y0) < _MESH_SIZE:
                full = Detection(
                    ((x0 + 0.5) * sx - 0.5, (y0 + 0.5) * sy - 0.5,
                     (x1 + 0.5) * sx - 0.5, (y1 + 0.5) * sy - 0.5),
                    det.score,
                )
                jobs.append((image, full, False))
            else:
                jobs.append((small, det, s < 1.0))

        def mesh(job: tuple[np.ndarray, Detection, bool], lane: int) -> Face | None:
            source, det, rescale = job
            face = self._landmarks(source, det, lane)
            return face.rescaled(sx, sy, (h, w)) if face is not None and rescale else face

        faces: list[Face] = []
        for face in self._in_lanes(mesh, jobs, [_COST["mesh"]] * len(jobs)):
            if face is not None and all(_iou(face.bbox, f.bbox) <= 0.5 for f in faces):
                faces.append(face)
        return sorted(faces, key=lambda f: (f.bbox[0], f.bbox[1]))


@shared
def default_detector() -> FaceDetector:
    """The process-wide shared :class:`FaceDetector` (created on first call)."""
    return FaceDetector()


def analyze(image: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[Face]:
    """Every face in an RGB image (uint8, or float in [0, 1]) with the shared detector: boxes,
    478 landmarks, head pose, left to right. The one face pass of every job: give its result to
    a job as ``faces=`` and the job detects nothing again."""
    return default_detector().analyze(image, min_face=min_face)
