"""Training data for SC-FEGAN (Jo and Park, ICCV 2019, section 3.1) from any folder of faces.

Preparation (once per folder, size and seed; cached as one compact ``.npz`` under
``~/.cache/meiyan/data/``) turns each photo into four planes at the working size:

- the photo (stored as JPEG);
- a part label map (:data:`PARTS`): skin, hair (from a hair mask where the data has one), eyes,
  brows, nose, lips and mouth from the face-mesh landmarks (:func:`meiyan.face.region_mask`);
- the sketch: HED edges (Xie and Tu, ICCV 2015; :mod:`meiyan.train.hed`) of the
  histogram-equalised photo, thresholded, thinned (Zhang-Suen) and cleared of small pieces; a
  Canny detector (Canny, TPAMI 1986) stands in where the HED weights are absent;
- the colour map: a median filter, then repeated bilateral filtering, each face part (landmark
  regions, skin, hair) filled with its median colour.

:class:`SCFEGANDataset` draws, for each (seed, epoch, sample), a hole (free-form brush strokes
after DeepFill v2's generator: Yu et al., "Free-Form Image Inpainting with Gated Convolution",
ICCV 2019; a hair mask; or face-part masks), jitters the sketch and drops pieces of it (so that
hand-drawn lines work too) and gives the colour as a few strokes inside the hole.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from meiyan.errors import MeiyanError
from meiyan.train.datasets import IMAGE_SUFFIXES, LFW_GT_DIR, lfw_sources, read_gray, read_rgb
from meiyan.train.trainer import EpochDataset, data_dir

FORMAT = "meiyan-sc-fegan-data/1"
PARTS = ("background", "skin", "hair", "eyes", "eyebrows", "nose", "lips", "mouth")
"""Label values of the part map, in this order (0 is background)."""
FACE_PARTS = ("eyes", "eyebrows", "nose", "lips")
_REGIONS = {"eyes": ("eyes",), "eyebrows": ("eyebrows",), "nose": ("nose",),
            "lips": ("upper_lip", "lower_lip"), "mouth": ("inner_mouth",)}
HED_THRESHOLD = 0.5
MIN_PIECE = 12  # sketch pieces of fewer pixels are removed
BILATERAL_PASSES = 4
JPEG_QUALITY = 95
CANNY_SHARE = 0.3  # training samples whose sketch is the edge detector's, not HED's


@dataclass(frozen=True)
class FaceSource:
    """One photo of a face folder, with its hair mask (``hair_kind`` ``"binary"`` or ``"lfw"``,
    whose red channel is hair) when the data has one."""

    name: str
    image: Path
    hair: Path | None = None
    hair_kind: str = "binary"


def find_faces(root: str | Path) -> list[FaceSource]:
    """Every photo under ``root``: LFW Part Labels (hair from the ground truth), ``images/``
    beside an optional ``hair/`` (matched by stem), or a plain folder of images."""
    root = Path(root)
    if (root / LFW_GT_DIR).is_dir():
        return [FaceSource(s.name, s.image, s.mask, "lfw") for s in lfw_sources(root)]
    folder = root / "images" if (root / "images").is_dir() else root
    hair = {p.stem: p for p in (root / "hair").glob("*")} if (root / "hair").is_dir() else {}
    sources = [FaceSource(p.stem, p, hair.get(p.stem)) for p in sorted(folder.iterdir())
               if p.suffix.lower() in IMAGE_SUFFIXES]
    if not sources:
        raise MeiyanError(f"{root}: no images (expected images/, hair/ or LFW Part Labels)")
    return sources


def _hair_mask(source: FaceSource, shape: tuple[int, int]) -> np.ndarray | None:
    if source.hair is None:
        return None
    if source.hair_kind == "lfw":
        gt = np.asarray(Image.open(source.hair).convert("RGB"))
        hair = np.argmax(gt, axis=2) == 0
    else:
        hair = read_gray(source.hair) > 127
    return cv2.resize(hair.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0


def part_labels(image: np.ndarray, hair: np.ndarray | None, landmarks: np.ndarray | None,
                size: int) -> np.ndarray:
    """``(size, size)`` uint8 map of :data:`PARTS` for a photo, its hair mask (at ``size``) and
    its face-mesh landmarks (in ``image`` pixels, ``None``: no face found)."""
    from meiyan.face import region_mask

    labels = np.zeros((size, size), np.uint8)
    if landmarks is not None:
        pts = landmarks * (size / np.array(image.shape[1::-1], np.float64))
        shape = (size, size)
        labels[region_mask(pts, "face_oval", shape) > 0.5] = PARTS.index("skin")
    if hair is not None:
        labels[hair] = PARTS.index("hair")
    if landmarks is not None:
        for part, names in _REGIONS.items():
            labels[region_mask(pts, names, shape) > 0.5] = PARTS.index(part)
    return labels


def equalised(image: np.ndarray) -> np.ndarray:
    """The photo with its luminance histogram equalised (colours kept)."""
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(ycc[..., 0])
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def clean_lines(lines: np.ndarray, min_piece: int = MIN_PIECE) -> np.ndarray:
    """Boolean line map thinned to one pixel (Zhang and Suen 1984), pieces under ``min_piece``
    pixels removed."""
    if hasattr(cv2, "ximgproc"):
        thin = cv2.ximgproc.thinning(lines.astype(np.uint8) * 255) > 0
    else:  # OpenCV without the contrib modules
        from skimage.morphology import thin as skeleton

        thin = skeleton(lines)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(thin.astype(np.uint8), 8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_piece
    return keep[labels]


def canny_lines(image: np.ndarray) -> np.ndarray:
    """Edge-detector sketch (the fallback without HED): Canny on the equalised, blurred grey
    photo, thresholds scaled by its median, cleaned as :func:`clean_lines`."""
    grey = cv2.GaussianBlur(cv2.cvtColor(equalised(image), cv2.COLOR_RGB2GRAY), (0, 0), 1.5)
    median = float(np.median(grey))
    edges = cv2.Canny(grey, 0.66 * median, 1.33 * median) > 0
    return clean_lines(edges)


class Sketcher:
    """Sketch lines of a photo: HED of the equalised photo at ``hed_size`` pixels (long side;
    ``None``: as is), or Canny where the HED weights are absent (``use_hed=False`` forces it)."""

    def __init__(self, use_hed: bool = True, hed_size: int | None = None) -> None:
        self.model = None
        self.hed_size = hed_size
        if use_hed:
            from meiyan.errors import ModelError
            from meiyan.train.hed import HED

            try:
                self.model = HED()
            except ModelError:
                self.model = None
        self.method = "hed" if self.model is not None else "canny"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool lines of an RGB uint8 photo."""
        if self.model is None:
            return canny_lines(image)
        from meiyan.train.hed import hed_edges

        h, w = image.shape[:2]
        small = image
        if self.hed_size and max(h, w) != self.hed_size:
            scale = self.hed_size / max(h, w)
            small = cv2.resize(image, (round(w * scale), round(h * scale)),
                               interpolation=cv2.INTER_AREA)
        prob = hed_edges(equalised(small), self.model)
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        return clean_lines(prob > HED_THRESHOLD)


def colour_map(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """SC-FEGAN's colour map: median filter, :data:`BILATERAL_PASSES` bilateral filters, then
    every labelled part (not the background) filled with its median colour."""
    smooth = cv2.medianBlur(image, 5)
    for _ in range(BILATERAL_PASSES):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 9)
    out = smooth.copy()
    for value in range(1, len(PARTS)):
        part = labels == value
        if part.any():
            out[part] = np.median(smooth[part], axis=0).astype(np.uint8)
    return out


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {"compress_level": 9}
    Image.fromarray(array).save(buf, fmt, **options)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


PLANES = ("photo", "labels", "sketch", "colour")
_FORMATS = {"photo": "JPEG", "labels": "PNG", "sketch": "PNG", "colour": "PNG"}


@dataclass
class Prepared:
    """A prepared split: per sample, the encoded planes of :data:`PLANES`; the last
    ``holdout`` samples are for validation."""

    names: list[str]
    blobs: dict[str, list[bytes]]
    size: int
    sketch_method: str
    holdout: int = 0

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: Sequence[int]) -> Prepared:
        """The samples at ``indices`` (no holdout)."""
        idx = [int(i) for i in indices]
        return Prepared([self.names[i] for i in idx],
                        {k: [v[i] for i in idx] for k, v in self.blobs.items()},
                        self.size, self.sketch_method)

    @classmethod
    def joined(cls, train: Prepared, holdout: Prepared) -> Prepared:
        """``train`` followed by ``holdout`` (kept for validation), as one file holds them."""
        return cls(train.names + holdout.names,
                   {k: train.blobs[k] + holdout.blobs[k] for k in PLANES}, train.size,
                   train.sketch_method, len(holdout))

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """Decoded planes of sample ``index``: photo ``(S, S, 3)``, labels ``(S, S)`` uint8,
        sketch ``(S, S)`` bool, colour ``(S, S, 3)``."""
        out = {k: _decode(self.blobs[k][index]) for k in PLANES}
        out["sketch"] = out["sketch"] > 0
        return out

    def save(self, path: Path) -> None:
        """One ``.npz``: each plane as a byte buffer with its offsets (no pickles)."""
        arrays: dict[str, np.ndarray] = {
            "meta": np.frombuffer(json.dumps({
                "format": FORMAT, "size": self.size, "sketch": self.sketch_method,
                "holdout": self.holdout, "names": self.names}).encode(), np.uint8)}
        for key in PLANES:
            arrays[key] = np.frombuffer(b"".join(self.blobs[key]), np.uint8)
            arrays[f"{key}_ends"] = np.cumsum([len(b) for b in self.blobs[key]], dtype=np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Prepared:
        """What :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            if meta.get("format") != FORMAT:
                raise MeiyanError(f"{path}: not prepared SC-FEGAN data")
            blobs = {}
            for key in PLANES:
                data, ends = z[key].tobytes(), z[f"{key}_ends"]
                starts = np.concatenate([[0], ends[:-1]])
                blobs[key] = [data[s:e] for s, e in zip(starts, ends, strict=True)]
        return cls(meta["names"], blobs, int(meta["size"]), meta["sketch"],
                   int(meta.get("holdout", 0)))


def _key(sources: Sequence[FaceSource], size: int, use_hed: bool, hed_size: int | None,
         limit: int | None) -> str:
    text = json.dumps([FORMAT, size, use_hed, hed_size, limit,
                       [(str(s.image.resolve()), s.image.stat().st_size, str(s.hair))
                        for s in sources]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(root: str | Path, size: int = 256, *, use_hed: bool = True,
            hed_size: int | None = None, limit: int | None = None, cache: Path | None = None,
            progress: bool = False) -> Prepared:
    """The prepared data of a face folder at ``size`` pixels (photos resized to a square),
    from the cache when there; ``limit``: the first photos only. The result depends on the
    files and options alone (preparation draws no random numbers)."""
    from tqdm import tqdm

    from meiyan.face import analyze

    sources = find_faces(root)[:limit]
    key = _key(sources, size, use_hed, hed_size, limit)
    path = (cache or data_dir()) / f"sc-fegan-{size}-{key}.npz"
    if path.is_file():
        return Prepared.load(path)
    sketcher = Sketcher(use_hed, hed_size)
    blobs: dict[str, list[bytes]] = {k: [] for k in PLANES}
    names = []
    for source in tqdm(sources, desc="preparing", unit="photo", disable=not progress):
        image = read_rgb(source.image)
        faces = analyze(image)
        landmarks = max(faces, key=lambda f: f.size).landmarks if faces else None
        photo = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        labels = part_labels(image, _hair_mask(source, (size, size)), landmarks, size)
        planes = {"photo": photo, "labels": labels,
                  "sketch": sketcher(photo).astype(np.uint8) * 255,
                  "colour": colour_map(photo, labels)}
        for key in PLANES:
            blobs[key].append(_encode(planes[key], _FORMATS[key]))
        names.append(source.name)
    prepared = Prepared(names, blobs, size, sketcher.method)
    prepared.save(path)
    return prepared


# -- random holes, sketch jitter and colour strokes ------------------------------------------

def brush_strokes(rng: np.random.Generator, size: int, strokes: tuple[int, int] = (1, 4),
                  widths: tuple[float, float] = (12, 40)) -> np.ndarray:
    """DeepFill v2's free-form mask: ``strokes`` polylines of 4-12 vertices at alternating
    angles, ``widths`` in pixels at 256 (scaled with ``size``), round joints, random flips."""
    mask = np.zeros((size, size), np.uint8)
    scale = size / 256
    radius = np.hypot(size, size) / 8
    for _ in range(rng.integers(strokes[0], strokes[1] + 1)):
        vertices = int(rng.integers(4, 13))
        spread = 2 * np.pi / 15
        lo, hi = 2 * np.pi / 5 - rng.uniform(0, spread), 2 * np.pi / 5 + rng.uniform(0, spread)
        angles = [2 * np.pi - rng.uniform(lo, hi) if i % 2 == 0 else rng.uniform(lo, hi)
                  for i in range(vertices)]
        points = [(int(rng.integers(0, size)), int(rng.integers(0, size)))]
        for angle in angles:
            r = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            x = int(np.clip(points[-1][0] + r * np.cos(angle), 0, size - 1))
            y = int(np.clip(points[-1][1] + r * np.sin(angle), 0, size - 1))
            points.append((x, y))
        width = max(1, int(rng.uniform(*widths) * scale))
        cv2.polylines(mask, [np.array(points, np.int32)], False, 1, width)
        for p in points:
            cv2.circle(mask, p, width // 2, 1, -1)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1]
    return np.ascontiguousarray(mask) > 0


def part_hole(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """One or two face parts of the label map, dilated (``None`` when the map has none)."""
    present = [p for p in FACE_PARTS if (labels == PARTS.index(p)).any()]
    if not present:
        return None
    chosen = rng.choice(present, size=min(len(present), int(rng.integers(1, 3))), replace=False)
    hole = np.isin(labels, [PARTS.index(p) for p in chosen])
    if "lips" in chosen:
        hole |= labels == PARTS.index("mouth")
    size = labels.shape[0]
    k = max(3, int(size * rng.uniform(0.03, 0.08)) | 1)
    return cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (k, k))) > 0


def random_hole(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The hole of one training sample: face parts (40%), free-form strokes (40%), the hair
    (10%, where there is hair) or a box (10%)."""
    size = labels.shape[0]
    u = rng.random()
    if u < 0.4:
        hole = part_hole(labels, rng)
        if hole is not None:
            return hole
    hair = labels == PARTS.index("hair")
    if 0.8 <= u < 0.9 and hair.mean() > 0.02:
        return cv2.dilate(hair.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    if u >= 0.9:
        hole = np.zeros((size, size), bool)
        h, w = (rng.uniform(0.15, 0.45, 2) * size).astype(int)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        hole[y : y + h, x : x + w] = True
        return hole
    return brush_strokes(rng, size)


def jitter_sketch(sketch: np.ndarray, rng: np.random.Generator, drop: float = 0.3) -> np.ndarray:
    """Hand-drawn-like sketch: a small random affine warp (up to 2 px and 2 degrees), up to
    ``drop`` of its pieces removed, sometimes thickened."""
    size = sketch.shape[0]
    count, labels = cv2.connectedComponents(sketch.astype(np.uint8), connectivity=8)
    if count > 1:
        keep = rng.random(count) >= rng.uniform(0, drop)
        keep[0] = False
        sketch = keep[labels]
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-2, 2), rng.uniform(0.99, 1.01))
    m[:, 2] += rng.uniform(-2, 2, 2)
    warped = cv2.warpAffine(sketch.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR)
    out = warped > 0.3
    if rng.random() < 0.2:
        out = cv2.dilate(out.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    return out


def colour_strokes(hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few thick free-form strokes inside ``hole`` (where colour is given)."""
    size = hole.shape[0]
    strokes = brush_strokes(rng, size, (2, 5), (6, 16))
    strokes &= hole
    if rng.random() < 0.25:  # sometimes scribbles cover most of the hole
        strokes |= hole & (cv2.erode(hole.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    return strokes


def crop_around(planes: dict[str, np.ndarray], hole: np.ndarray, side: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The ``side``-pixel square of every plane that holds one random pixel of ``hole`` at a
    random place inside it."""
    ys, xs = np.nonzero(hole)
    i = int(rng.integers(len(ys)))
    limit = hole.shape[0] - side
    y = int(np.clip(ys[i] - rng.integers(side), 0, limit))
    x = int(np.clip(xs[i] - rng.integers(side), 0, limit))
    return {k: np.ascontiguousarray(v[y : y + side, x : x + side]) for k, v in planes.items()}


class SCFEGANDataset(EpochDataset):
    """Training samples of a :class:`Prepared` split. An item is a dict of tensors: ``image``
    ``(3, S, S)`` float32 in [-1, 1], ``mask``, ``sketch``, ``strokes`` ``(1, S, S)`` float32
    0/1 and ``colour`` ``(3, S, S)`` in [-1, 1]; ``fixed`` samples (validation) draw the same
    hole, sketch and colour strokes in every epoch. ``crop``: items are ``crop``-pixel squares
    holding a random pixel of the hole (the network is fully convolutional: a cheaper step on
    CPU, holes and faces at the working scale)."""

    def __init__(self, data: Prepared, seed: int = 0, *, augmented: bool = True,
                 fixed: bool = False, crop: int | None = None) -> None:
        super().__init__(seed)
        self.data, self.augmented, self.fixed, self.crop = data, augmented, fixed, crop

    def __len__(self) -> int:
        return len(self.data)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        import torch

        rng = self.rng(index)
        s = self.data.sample(index)
        if self.augmented and rng.random() < 0.5:
            s = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in s.items()}
        hole = random_hole(s["labels"], rng)
        sketch = s["sketch"]
        if self.augmented:
            if rng.random() < CANNY_SHARE:
                sketch = canny_lines(s["photo"])
            sketch = jitter_sketch(sketch, rng)
        strokes = colour_strokes(hole, rng)
        u = rng.random()
        if u < 0.1:
            sketch = np.zeros_like(sketch)
        elif u < 0.25:
            strokes = np.zeros_like(strokes)

        out = {"image": s["photo"], "colour": s["colour"], "mask": hole, "sketch": sketch & hole,
               "strokes": strokes & hole}
        if self.crop and self.crop < hole.shape[0] and hole.any():
            out = crop_around(out, hole, self.crop, rng)

        def planes(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

        return {k: (planes(v.astype(np.float32) / 127.5 - 1) if v.ndim == 3
                    else torch.from_numpy(v.astype(np.float32))[None]) for k, v in out.items()}
