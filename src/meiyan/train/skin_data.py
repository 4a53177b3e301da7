"""Labelled skin data of three datasets on one convention, framed as at inference, packed.

The network learns *skin with its features*: face skin, nose, eyes, lips, neck and ears are
skin; hair, beard, clothes and background are not; eyebrows are left out of the loss (the
datasets disagree on them) and the landmarks cut the features out after inference, as
:class:`meiyan.skin.unet_onnx.UNetSkinSegmenter` does. Each reader maps its dataset's labels to
a target of ``0`` (not skin), ``1`` (skin) and :data:`IGNORE`:

* ``lfw``: LFW Part Labels (Kae, Sohn, Lee and Learned-Miller, CVPR 2013; photos from Huang et
  al. 2007), ``images/NAME.jpg`` and ``labels/NAME.png`` with 0 background, 1 skin (eyes, brows
  and lips included), 2 hair. Only the centred person is labelled: other faces are ignored.
* ``fasseg``: FASSEG multipose (Khan, Mauro, Migliorati and Leonardi, ICME 2017), labels 1 skin,
  3 eyes, 4 nose, 5 mouth are skin; 0 background and 2 hair (brows included) are not.
* ``celeba``: CelebA-HQ faces (Karras et al., ICLR 2018) with hair masks: hair is never skin,
  the face-mesh oval is skin, the rest is unknown (ignored).

:func:`frame` finds the face with :func:`meiyan.face.analyze` and cuts the square window that
inference uses (:func:`meiyan.skin.framing.face_window`; the letterboxed whole photo where no
face is found), with :data:`CONTEXT` times its side around it so that augmentation can move,
scale and turn the face without inventing pixels. :func:`pack` stores every framed photo of
the datasets in one ``.npz`` (JPEG photos, PNG targets): the training file for the CPU and for
a GPU machine without the datasets or MediaPipe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from meiyan.errors import MeiyanError
from meiyan.face.regions import region_mask
from meiyan.face.window import Window
from meiyan.skin.framing import crop, face_window, whole_image_window
from meiyan.train.datasets import read_gray, read_rgb

IGNORE = 255
DATASETS = ("lfw", "fasseg", "celeba")
CONTEXT = 1.25
"""The stored square is this many times the face window's side (same centre)."""
STORED = 320
"""Side of the stored square in pixels: the face window is ``STORED / CONTEXT`` = 256."""
PACK_FORMAT = "meiyan-skin-pack/1"
_BROW_MARGIN = 0.03  # eyebrows ignored with this margin (face sizes)
_OTHER_FACE_MARGIN = 0.3  # other people's faces (LFW) ignored with this margin


@dataclass
class Labelled:
    """One photo on the common convention: ``image`` RGB uint8, ``target`` uint8 0/1/IGNORE."""

    dataset: str
    split: str
    name: str
    image: np.ndarray
    target: np.ndarray


def _stems(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise MeiyanError(f"{folder} not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def read_lfw(root: Path, split: str) -> Iterator[Labelled]:
    """LFW Part Labels of ``root/split`` (``train`` or ``validation``)."""
    for path in _stems(root / split / "images"):
        labels = read_gray(root / split / "labels" / f"{path.stem}.png")
        yield Labelled("lfw", split, path.stem, read_rgb(path), (labels == 1).astype(np.uint8))


def read_fasseg(root: Path, split: str) -> Iterator[Labelled]:
    """FASSEG multipose of ``root/split`` (``train`` or ``test``)."""
    for path in _stems(root / split / "images"):
        labels = read_gray(root / split / "labels" / f"{path.stem}.png")
        target = np.isin(labels, (1, 3, 4, 5)).astype(np.uint8)
        yield Labelled("fasseg", split, path.stem, read_rgb(path), target)


def read_celeba(root: Path, split: str) -> Iterator[Labelled]:
    """CelebA-HQ of ``root/split`` (``train`` or ``validation``): hair 0, the rest unknown
    (the oval becomes skin in :func:`frame`, where the landmarks are known)."""
    for path in _stems(root / split / "images"):
        hair = read_gray(root / split / "hair" / f"{path.stem}.png") > 127
        target = np.where(hair, 0, IGNORE).astype(np.uint8)
        yield Labelled("celeba", split, path.stem, read_rgb(path), target)


READERS: dict[str, tuple[str, Callable[[Path, str], Iterator[Labelled]], tuple[str, ...]]] = {
    "lfw": ("lfw-parts", read_lfw, ("train", "validation")),
    "fasseg": ("fasseg-multipose", read_fasseg, ("train", "test")),
    "celeba": ("celeba-hq-1k", read_celeba, ("train", "validation")),
}
"""Dataset name: (folder under the shared data folder, reader, its splits)."""


def _target_crop(target: np.ndarray, win: Window, size: int) -> np.ndarray:
    """``win`` of a label map at ``size`` x ``size``, nearest neighbour, 0 outside the photo."""
    s = size / win.size[0]
    m = np.float32([[s, 0, (0.5 - win.x0) * s - 0.5], [0, s, (0.5 - win.y0) * s - 0.5]])
    return cv2.warpAffine(target, m, (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _pick(faces: list, shape: tuple[int, int], dataset: str):
    """The labelled face: nearest the centre for LFW (one centred person), else the largest."""
    if dataset == "lfw":
        cx, cy = shape[1] / 2, shape[0] / 2
        return min(faces, key=lambda f: math.hypot(*(np.mean(f.bbox[::2]) - cx,
                                                     np.mean(f.bbox[1::2]) - cy)))
    return max(faces, key=lambda f: f.size)


def frame(item: Labelled, faces: list | None = None, size: int = STORED) -> Labelled:
    """``item`` cut to its face window with context (see the module), landmark rules applied:
    eyebrows ignored, other faces ignored (LFW), the face oval made skin (CelebA)."""
    from meiyan.face import analyze

    image, target = item.image, item.target.copy()
    shape = image.shape[:2]
    faces = analyze(image) if faces is None else faces
    if faces:
        face = _pick(faces, shape, item.dataset)
        lm = face.landmarks
        if item.dataset == "celeba":
            oval = region_mask(lm, ["face_oval"], shape) >= 0.5
            target[oval & (target == IGNORE)] = 1
        k = max(1, round(_BROW_MARGIN * face.size))
        brows = (region_mask(lm, ["eyebrows"], shape) >= 0.5).astype(np.uint8)
        target[cv2.dilate(brows, np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0] = IGNORE
        for other in faces:
            if other is not face and item.dataset == "lfw":
                x0, y0, x1, y1 = other.bbox
                m = _OTHER_FACE_MARGIN * other.size
                target[max(0, int(y0 - m)) : int(y1 + m), max(0, int(x0 - m)) : int(x1 + m)] = (
                    IGNORE)
        win = face_window(lm, face.pose.yaw)
    else:
        win = whole_image_window(*shape)
    side = round(win.size[0] * CONTEXT)
    cx, cy = (win.x0 + win.x1) / 2, (win.y0 + win.y1) / 2
    wide = Window.square(cx, cy, side)
    return Labelled(item.dataset, item.split, item.name, crop(image, wide, size),
                    _target_crop(target, wide, size))


def _concat(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0, *map(len, blobs)]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), np.uint8), offsets


def pack(
    data: Path,
    out: Path,
    datasets: tuple[str, ...] = DATASETS,
    quality: int = 90,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Frame every photo of ``datasets`` under the shared data folder ``data`` into ``out``
    (``.npz``); returns the number of photos per dataset and split."""
    jpegs, pngs, meta = [], [], []
    counts: dict[str, int] = {}
    for name in datasets:
        folder, reader, splits = READERS[name]
        for split in splits:
            for item in reader(Path(data) / folder, split):
                f = frame(item)
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, quality])
                ok2, png = cv2.imencode(".png", f.target)
                if not (ok and ok2):
                    raise MeiyanError(f"cannot encode {name}/{split}/{item.name}")
                jpegs.append(jpg.tobytes())
                pngs.append(png.tobytes())
                meta.append((name, split, item.name))
                key = f"{name}/{split}"
                counts[key] = counts.get(key, 0) + 1
            if progress:
                progress(f"{name}/{split}: {counts.get(f'{name}/{split}', 0)} photos")
    jpeg, jpeg_offsets = _concat(jpegs)
    png, png_offsets = _concat(pngs)
    header = {"format": PACK_FORMAT, "stored": STORED, "context": CONTEXT, "quality": quality}
    np.savez(out, jpeg=jpeg, jpeg_offsets=jpeg_offsets, png=png, png_offsets=png_offsets,
             dataset=np.array([m[0] for m in meta]), split=np.array([m[1] for m in meta]),
             name=np.array([m[2] for m in meta]), header=np.array(json.dumps(header)))
    return counts


class Pack:
    """A packed file read back: ``len(pack)`` photos, ``pack[i]`` a :class:`Labelled`."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as z:
            self.header = json.loads(str(z["header"]))
            if self.header.get("format") != PACK_FORMAT:
                raise MeiyanError(f"{path} is not a meiyan skin pack ({self.header})")
            self._jpeg, self._jo = z["jpeg"], z["jpeg_offsets"]
            self._png, self._po = z["png"], z["png_offsets"]
            self.dataset, self.split, self.name = z["dataset"], z["split"], z["name"]

    def __len__(self) -> int:
        return len(self.name)

    def __getitem__(self, i: int) -> Labelled:
        jpg = self._jpeg[self._jo[i] : self._jo[i + 1]]
        png = self._png[self._po[i] : self._po[i + 1]]
        image = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        target = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
        return Labelled(str(self.dataset[i]), str(self.split[i]), str(self.name[i]), image,
                        target)

    def indices(self, dataset: str, split: str) -> np.ndarray:
        """Positions of the photos of one dataset and split."""
        return np.nonzero((self.dataset == dataset) & (self.split == split))[0]
