"""``meiyan.edit``: erase a region of a photo and fill it, guided by sketch lines and colours.

The ``sc-fegan`` engine runs the SC-FEGAN generator (Jo and Park, ICCV 2019) exported to ONNX,
with onnxruntime and without torch. Holes are grouped into windows at the network's working
size: a face-aligned square (after Karras et al.'s FFHQ alignment: eyes level, the face centred
as in aligned face datasets) where a face holds the hole, else a square around the hole with
context around it. Each window is resampled to the working size, filled, resampled back and
pasted inside the mask only, so every pixel outside the mask is bit-identical to the input. The
``classic`` engine needs no model: a membrane through the photo around the hole and the colour
strokes, cut at the sketch lines (:mod:`meiyan.edit.membrane`); ``auto`` falls back to it, with
a warning, when no network model is available. ``telea`` is OpenCV's inpainting (A. Telea, "An
Image Inpainting Technique Based on the Fast Marching Method", 2004), which ignores sketch and
colour: the benchmark's baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from meiyan.engines import AUTO, CLASSIC, EngineError, EngineWarning, slot
from meiyan.errors import MeiyanError, ModelError

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

    from meiyan.face import Face

ENGINE = "sc-fegan"
TELEA = "telea"
TELEA_RADIUS = 5
HOLE_DILATION = 2  # window pixels added around the resampled hole, so no erased pixel leaks back
MERGE_GAP = 16  # holes closer than this (pixels) share a window
NOISE_THRESHOLD = 254.5 / 255  # the official demo's noise: a normal draw of at least this is 1
# MediaPipe face-mesh points: iris centres (right and left of the image) and mouth corners.
EYES = (468, 473)
MOUTH = (61, 291)


class EditError(MeiyanError, ValueError):
    """An edit's inputs do not fit together (shape, dtype, size of mask, sketch or colour)."""


@dataclass(frozen=True)
class EditJob:
    """One edit: ``hole``, ``sketch`` and ``strokes`` are ``(H, W)`` bool; ``colour`` is
    ``(H, W, 3)`` float32 RGB in [0, 1] (meaningful where ``strokes``); ``weights`` is an ONNX
    file or ``None`` for the installed model."""

    hole: np.ndarray
    sketch: np.ndarray
    colour: np.ndarray
    strokes: np.ndarray
    seed: int = 0
    weights: Path | None = None


def _full_scale(a: np.ndarray) -> float:
    return float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else 1.0


def _binary(a: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray:
    """``(H, W)`` bool from a bool array or a numeric one above half of its full scale."""
    if a is None:
        return np.zeros(shape, bool)
    if not isinstance(a, np.ndarray) or a.shape != shape:
        got = getattr(a, "shape", type(a).__name__)
        raise EditError(f"{name} must have shape {shape} (the image's height and width), "
                        f"got {got}")
    if a.dtype == np.bool_:
        return a
    if a.dtype.kind not in "uif":
        raise EditError(f"{name} must be bool, integer or float, got {a.dtype}")
    return a > _full_scale(a) / 2


def _colour(colour: np.ndarray | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGB float32 [0, 1] and stroke mask of ``colour``: RGBA strokes where alpha is above half,
    RGB strokes where not pure black."""
    if colour is None:
        return np.zeros((*shape, 3), np.float32), np.zeros(shape, bool)
    fits = isinstance(colour, np.ndarray) and colour.ndim == 3 and colour.shape[:2] == shape
    if not fits or colour.shape[2] not in (3, 4) or colour.dtype.kind not in "uf":
        got = getattr(colour, "shape", type(colour).__name__)
        raise EditError(f"colour must be RGB or RGBA of shape {(*shape, 3)} or {(*shape, 4)}, "
                        f"got {got} {getattr(colour, 'dtype', '')}".rstrip())
    scale = np.float32(1.0 / _full_scale(colour))
    rgb = colour[..., :3].astype(np.float32) * scale
    strokes = (colour[..., 3] > _full_scale(colour) / 2 if colour.shape[2] == 4
               else colour[..., :3].max(axis=2) > 0)
    return rgb, strokes


def _split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if not isinstance(image, np.ndarray):
        raise EditError(f"image must be a NumPy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] not in (3, 4) or 0 in image.shape:
        raise EditError(f"image must have shape (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise EditError(f"image must be uint8, uint16 or float32/float64, got {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise EditError("image contains NaN or infinite values")
    return image[..., :3], (image[..., 3] if image.shape[2] == 4 else None)


def edit(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    sketch: np.ndarray | None = None,
    colour: np.ndarray | None = None,
    engine: str = AUTO,
    seed: int = 0,
    faces: Sequence[Face] | None = None,
    weights: str | Path | None = None,
) -> np.ndarray:
    """``image`` with the region ``mask`` filled; every pixel outside the mask is unchanged.

    ``image``: RGB or RGBA (alpha kept as is), uint8, uint16 or float in [0, 1]. ``mask``,
    ``sketch``: ``(H, W)`` bool, or numbers above half of their full scale. ``colour``: RGBA
    with alpha marking the strokes, or RGB where pure black means no colour. ``engine``:
    ``"auto"``, ``"classic"``, ``"telea"`` or ``"sc-fegan"``; ``weights``: an ONNX generator (from
    ``meiyan convert sc-fegan`` or the trainer), which ``auto`` then uses. ``faces``: the
    photo's faces (found with :func:`meiyan.face.analyze` when ``None``). ``seed`` fixes the
    generator's noise. An empty mask returns a copy of the input.
    """
    rgb, _ = _split(image)
    shape = rgb.shape[:2]
    hole = _binary(mask, shape, "mask")
    lines = _binary(sketch, shape, "sketch")
    tint, strokes = _colour(colour, shape)
    if not hole.any():
        return image.copy()
    name = _choose(engine, weights)
    if name == TELEA and ((lines & hole).any() or (strokes & hole).any()):
        warnings.warn("edit engine 'telea' ignores sketch and colour", EngineWarning,
                      stacklevel=2)
    job = EditJob(hole, lines, tint, strokes, seed, Path(weights) if weights else None)
    work = rgb if rgb.dtype == np.uint8 else rgb.astype(np.float32) / _full_scale(rgb)
    filled = SLOT.get(name)(work, faces, job)
    out = image.copy()
    values = filled[hole]
    if rgb.dtype.kind == "u" and values.dtype != rgb.dtype:
        values = np.rint(np.clip(values, 0, 1) * _full_scale(rgb)).astype(rgb.dtype)
    elif rgb.dtype.kind == "f":
        values = np.clip(values, 0, 1)
    out[..., :3][hole] = values
    return out


def _choose(engine: str, weights: str | Path | None) -> str:
    if weights is not None:
        if engine not in (AUTO, ENGINE):
            raise EngineError(f"weights only apply to the {ENGINE!r} edit engine, not {engine!r}")
        if not Path(weights).is_file():
            raise EditError(f"{weights}: no such ONNX model")
        return ENGINE
    if engine == AUTO and not SLOT.ranking():
        warnings.warn(
            f"edit engine auto: no {ENGINE} model is installed (give weights=PATH, an ONNX "
            f"file); using 'classic' (a membrane fill that follows the sketch and colours)",
            EngineWarning, stacklevel=3,
        )
        return CLASSIC
    return SLOT.resolve(engine)


def telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's Telea inpainting of ``hole`` in ``image`` (uint8 or float32 RGB), on the hole's
    bounding box with a margin."""
    ys, xs = np.nonzero(hole)
    pad = 2 * TELEA_RADIUS + 2
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, hole.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, hole.shape[1])
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    m = hole[y0:y1, x0:x1].astype(np.uint8)
    if crop.dtype == np.uint8:
        filled = cv2.inpaint(crop, m, TELEA_RADIUS, cv2.INPAINT_TELEA)
    else:  # OpenCV inpaints float images one channel at a time
        filled = np.stack([cv2.inpaint(np.ascontiguousarray(crop[..., c]), m, TELEA_RADIUS,
                                       cv2.INPAINT_TELEA) for c in range(3)], -1)
    out = image.copy()
    out[y0:y1, x0:x1] = filled
    return out


class ClassicEngine:
    """The membrane fill: no model; follows the sketch lines and colour strokes."""

    def __call__(self, image: np.ndarray, faces: Sequence[Face] | None,
                 job: EditJob) -> np.ndarray:
        from meiyan.edit.membrane import membrane_fill

        return membrane_fill(image, job.hole, job.sketch, job.strokes, job.colour)


class TeleaEngine:
    """Telea inpainting: no model, no guidance."""

    def __call__(self, image: np.ndarray, faces: Sequence[Face] | None,
                 job: EditJob) -> np.ndarray:
        return telea(image, job.hole)


@dataclass(frozen=True)
class Window:
    """A square of side ``side`` pixels centred at ``centre`` (x, y), its x axis at ``angle``
    radians from the image's; ``matrix(size)`` maps image to window pixel coordinates."""

    centre: tuple[float, float]
    side: float
    angle: float = 0.0

    def matrix(self, size: int) -> np.ndarray:
        s = size / self.side
        c, n = np.cos(self.angle) * s, np.sin(self.angle) * s
        cx, cy = self.centre
        half = (size - 1) / 2
        return np.array([[c, n, half - c * cx - n * cy], [-n, c, half + n * cx - c * cy]])

    def holds(self, points: np.ndarray, size: int, margin: float) -> bool:
        """Whether every ``(x, y)`` point lies inside, ``margin`` (share of the side) from its
        edges."""
        uv = points @ self.matrix(size)[:, :2].T + self.matrix(size)[:, 2]
        return bool(((uv >= margin * size) & (uv <= (1 - margin) * size - 1)).all())


def face_window(face: Face) -> Window:
    """The face-aligned square of FFHQ's alignment (Karras et al., CVPR 2019) from the
    landmarks: eyes level, centred a little below them, about four eye distances wide."""
    lm = face.landmarks.astype(np.float64)
    eye_l, eye_r = lm[EYES[0]], lm[EYES[1]]
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    eye_to_mouth = (lm[MOUTH[0]] + lm[MOUTH[1]]) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eye_avg + eye_to_mouth * 0.1
    return Window((float(centre[0]), float(centre[1])), 2 * half,
                  float(np.arctan2(x[1], x[0])))


def box_window(x0: int, y0: int, x1: int, y1: int, size: int, image_side: int) -> Window:
    """A square around the box ``[x0, x1) x [y0, y1)``: half as wide again plus 32 pixels, and
    at least the working size (or the image's long side, if smaller)."""
    side = max(max(x1 - x0, y1 - y0) * 1.5 + 32, min(size, image_side))
    return Window(((x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2), float(side))


def plan_windows(hole: np.ndarray, faces: Sequence[Face], size: int,
                 margin: float = 0.04) -> list[tuple[Window, np.ndarray]]:
    """Windows covering ``hole``, each with the hole pixels it fills (every one in exactly one):
    groups of nearby holes go to the first face window holding them, else to a box window."""
    near = cv2.dilate(hole.astype(np.uint8), np.ones((MERGE_GAP, MERGE_GAP), np.uint8))
    count, labels = cv2.connectedComponents(near, connectivity=8)
    by_face: dict[int, np.ndarray] = {}
    plans: list[tuple[Window, np.ndarray]] = []
    windows = [face_window(f) for f in faces]
    for label in range(1, count):
        part = (labels == label) & hole
        ys, xs = np.nonzero(part)
        x, y, w, h = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        corners = np.array([[x, y], [x + w - 1, y], [x, y + h - 1], [x + w - 1, y + h - 1]],
                           np.float64)
        owner = next((i for i, win in enumerate(windows) if win.holds(corners, size, margin)),
                     None)
        if owner is None:
            plans.append((box_window(x, y, x + w, y + h, size, max(hole.shape)), part))
        else:
            by_face[owner] = by_face.get(owner, np.zeros_like(hole)) | part
    return [(windows[i], part) for i, part in sorted(by_face.items())] + plans


class SCFEGANEngine:
    """The SC-FEGAN generator as ONNX, run by onnxruntime on windows around the holes."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def session(self, weights: Path | None) -> InferenceSession:
        from meiyan.models import onnx_session

        if weights is None:
            raise EngineError(f"edit engine {ENGINE!r} needs weights (an ONNX file from "
                              f"`meiyan convert sc-fegan`): no model ships yet")
        session = onnx_session(weights, threads=self.threads)
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("meiyan.model") != ENGINE:
            raise ModelError(f"{weights} is not a meiyan SC-FEGAN model (metadata {meta})")
        return session

    def __call__(self, image: np.ndarray, faces: Sequence[Face] | None,
                 job: EditJob) -> np.ndarray:
        session = self.session(job.weights)
        size = int(session.get_modelmeta().custom_metadata_map["meiyan.input_size"])
        if faces is None:
            from meiyan.face import analyze

            faces = analyze(image)
        rng = np.random.default_rng(job.seed)
        img = image.astype(np.float32) / np.float32(255 if image.dtype == np.uint8 else 1)
        out = img.copy()
        for window, part in plan_windows(job.hole, faces, size):
            fill_window(session, img, out, window, part, job, size, rng)
        return out


def sketch_for(sketch: np.ndarray, scale: float) -> np.ndarray:
    """``sketch`` as float32, its lines thickened to ``1 / scale`` pixels where the window
    shrinks the photo by ``scale`` (else thin lines fall between the resampled pixels)."""
    reach = int(np.ceil(1 / scale - 1e-6)) if scale < 1 else 1
    lines = sketch.astype(np.uint8)
    if reach > 1:
        lines = cv2.dilate(lines, np.ones((reach, reach), np.uint8))
    return lines.astype(np.float32)


def fill_window(session: InferenceSession, img: np.ndarray, out: np.ndarray, window: Window,
                part: np.ndarray, job: EditJob, size: int, rng: np.random.Generator) -> None:
    """Run the generator on ``window`` of ``img`` and write its result into ``out`` at
    ``part``'s pixels."""
    m = window.matrix(size)
    warp = {"dsize": (size, size), "flags": cv2.INTER_LINEAR}
    crop = cv2.warpAffine(img, m, borderMode=cv2.BORDER_REFLECT_101, **warp)
    hole = cv2.warpAffine(job.hole.astype(np.float32), m, borderMode=cv2.BORDER_REFLECT_101,
                          **warp) > 0.01
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8),
                      iterations=HOLE_DILATION).astype(np.float32)
    sketch = cv2.warpAffine(sketch_for(job.sketch, size / window.side), m, **warp) > 0.25
    strokes = cv2.warpAffine(job.strokes.astype(np.uint8), m, dsize=(size, size),
                             flags=cv2.INTER_NEAREST) > 0
    colour = cv2.warpAffine(job.colour, m, dsize=(size, size), flags=cv2.INTER_NEAREST)
    noise = rng.standard_normal((size, size)) >= NOISE_THRESHOLD
    h = hole[..., None]
    planes = [(crop * 2 - 1) * (1 - h), sketch[..., None] * h,
              np.where(strokes[..., None], colour * 2 - 1, -1.0) * h, h, noise[..., None] * h]
    x = np.concatenate(planes, -1).astype(np.float32).transpose(2, 0, 1)[None]
    generated = session.run(None, {session.get_inputs()[0].name: x})[0][0].transpose(1, 2, 0)
    generated = (generated + 1) * 0.5
    ys, xs = np.nonzero(part)
    y0, x0 = ys.min(), xs.min()
    roi = (xs.max() - x0 + 1, ys.max() - y0 + 1)
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    back = cv2.warpAffine(np.ascontiguousarray(generated), shifted, roi,
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    sub = part[y0 : y0 + roi[1], x0 : x0 + roi[0]]
    out[y0 : y0 + roi[1], x0 : x0 + roi[0]][sub] = back[sub]


SLOT = slot("edit", "bench/edit.py")
SLOT.register(CLASSIC, ClassicEngine,
              description="membrane fill through the colour strokes, cut at the sketch lines "
              "(no model)")
SLOT.register(TELEA, TeleaEngine,
              description="OpenCV Telea inpainting (no model, no guidance)")
SLOT.register(ENGINE, SCFEGANEngine,
              description="SC-FEGAN generator (ONNX); give weights until a model ships")
