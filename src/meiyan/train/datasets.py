"""Readers for labelled skin data: plain folders, the FASSEG layout and LFW Part Labels.

A reader lists :class:`PairSource` entries (file paths only, nothing decoded); ``load()`` turns
one into a :class:`Pair` (an RGB uint8 photo and a boolean skin mask of the same size), so that a
training set is read lazily, one picture at a time. Photos are decoded by
:func:`meiyan.io.image.read_image` (EXIF orientation applied, 16-bit reduced to 8); masks and
label maps by Pillow, values as stored, turned by their own EXIF orientation if they have one.
Three layouts are understood:

* plain folders: ``images/`` beside ``masks/``, matched by file stem; a mask is binary
  (non-zero is skin) unless ``skin_labels`` is given, then it is a label map and skin is any of
  those labels;
* FASSEG: ``images/*.jpg`` beside ``labels/*.png`` label maps, skin = labels 1 (skin) and
  4 (nose) by default (K. Khan, M. Mauro, P. Migliorati, R. Leonardi, "Head pose estimation
  through multiclass face segmentation", ICME 2017);
* LFW Part Labels: ``parts_lfw_funneled_gt_images/NAME.ppm`` ground truth in which red is hair,
  green is skin and blue is background, with the photos in ``lfw_funneled/PERSON/NAME.jpg``
  (A. Kae, K. Sohn, H. Lee, E. Learned-Miller, "Augmenting CRFs with Boltzmann Machine Shape
  Priors for Image Labeling", CVPR 2013).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from meiyan.errors import ImageError, MeiyanError
from meiyan.io.image import from_float, read_image, to_float

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
FASSEG_SKIN_LABELS = (1, 4)
LFW_GT_DIR = "parts_lfw_funneled_gt_images"
LFW_IMAGE_DIR = "lfw_funneled"
_ORIENTATION = 0x0112


@dataclass
class Pair:
    """One labelled photo: ``image`` RGB uint8 ``(H, W, 3)``, ``mask`` bool ``(H, W)``."""

    name: str
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class PairSource:
    """Where one labelled photo is, and how its mask file reads as skin.

    ``mask_kind`` is ``"binary"`` (non-zero is skin), ``"labels"`` (a label map, skin is any of
    ``skin_labels``) or ``"lfw"`` (an RGB ground truth whose green is skin).
    """

    name: str
    image: Path
    mask: Path
    mask_kind: str = "binary"
    skin_labels: tuple[int, ...] = ()

    def load(self) -> Pair:
        """Decode the photo and its mask; ``ImageError`` when their sizes differ."""
        image = read_rgb(self.image)
        if self.mask_kind == "lfw":
            mask = lfw_skin_mask(_read_mask_file(self.mask, "RGB"))
        else:
            raw = read_gray(self.mask)
            mask = raw > 0 if self.mask_kind == "binary" else np.isin(raw, self.skin_labels)
        if mask.shape != image.shape[:2]:
            raise ImageError(
                f"{self.name}: mask size {mask.shape[::-1]} differs from image size "
                f"{image.shape[1::-1]}"
            )
        return Pair(self.name, image, mask)


def read_rgb(path: Path) -> np.ndarray:
    """A photo as RGB uint8, upright (EXIF orientation applied), through ``meiyan.io``."""
    pixels = read_image(path).pixels
    return pixels if pixels.dtype == np.uint8 else from_float(to_float(pixels), np.uint8)


def _read_mask_file(path: Path, mode: str | None = None) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im if mode is None else im.convert(mode))
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ImageError(f"cannot read mask {path}: {e}") from e


def read_gray(path: Path) -> np.ndarray:
    """A single-channel mask or label map as stored, without scaling (palette indices kept)."""
    arr = _read_mask_file(path)
    if arr.ndim == 3:
        raise ImageError(f"{path}: expected a single-channel mask or label map, got colour")
    return arr


def displayed_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF orientation), from its header."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            turned = im.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ImageError(f"cannot read image {path}: {e}") from e
    return (height, width) if turned else (width, height)


def check_sizes(sources: Iterable[PairSource]) -> None:
    """``ImageError`` for the first pair whose photo and mask differ in size (headers only)."""
    for s in sources:
        image, mask = displayed_size(s.image), displayed_size(s.mask)
        if image != mask:
            raise ImageError(f"{s.name}: mask size {mask} differs from image size {image}")


def _files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def folder_sources(
    root: Path, mask_dir: str = "masks", skin_labels: Iterable[int] | None = None
) -> list[PairSource]:
    """Pairs of ``root/images`` and ``root/<mask_dir>``, matched by file stem (see
    :func:`read_folder`)."""
    images, masks = _files(root / "images"), _files(root / mask_dir)
    names = sorted(images.keys() & masks.keys())
    if not names:
        raise MeiyanError(f"no matching files in {root / 'images'} and {root / mask_dir}")
    if skin_labels is None:
        return [PairSource(n, images[n], masks[n]) for n in names]
    labels = tuple(sorted(set(skin_labels)))
    return [PairSource(n, images[n], masks[n], "labels", labels) for n in names]


def lfw_sources(root: Path) -> list[PairSource]:
    """LFW Part Labels pairs (see :func:`read_lfw_parts`); ground truths without a photo are
    skipped."""
    sources = []
    for gt_path in sorted((root / LFW_GT_DIR).glob("*.ppm")):
        name = gt_path.stem
        person = name.rsplit("_", 1)[0]
        image_path = root / LFW_IMAGE_DIR / person / f"{name}.jpg"
        if image_path.is_file():
            sources.append(PairSource(name, image_path, gt_path, "lfw"))
    if not sources:
        raise MeiyanError(f"no LFW Part Labels pairs under {root}")
    return sources


def read_folder(
    root: Path, mask_dir: str = "masks", skin_labels: Iterable[int] | None = None
) -> list[Pair]:
    """Pairs from ``root/images`` and ``root/<mask_dir>``, matched by file stem.

    With ``skin_labels`` the masks are label maps and skin is any of those labels; without, a
    mask is binary and every non-zero pixel is skin.
    """
    return [s.load() for s in folder_sources(root, mask_dir, skin_labels)]


def read_fasseg(root: Path, skin_labels: Iterable[int] = FASSEG_SKIN_LABELS) -> list[Pair]:
    """FASSEG pairs (``images/`` and ``labels/``); skin is any of ``skin_labels``."""
    return read_folder(root, mask_dir="labels", skin_labels=skin_labels)


def lfw_skin_mask(gt_rgb: np.ndarray) -> np.ndarray:
    """Skin of an LFW Part Labels ground truth (RGB): pixels whose strongest channel is green."""
    if gt_rgb.ndim != 3 or gt_rgb.shape[2] != 3:
        raise ImageError(f"LFW ground truth must be RGB, got shape {gt_rgb.shape}")
    return np.argmax(gt_rgb, axis=2) == 1


def read_lfw_parts(root: Path) -> list[Pair]:
    """LFW Part Labels pairs: ``root/parts_lfw_funneled_gt_images/*.ppm`` and their photos.

    The photo of ``Some_Person_0001.ppm`` is ``root/lfw_funneled/Some_Person/
    Some_Person_0001.jpg``; ground truths without a photo are skipped.
    """
    return [s.load() for s in lfw_sources(root)]


def detect_layout(root: Path) -> str:
    """``"lfw"``, ``"fasseg"`` or ``"folder"``: the layout of the data folder ``root``."""
    if (root / LFW_GT_DIR).is_dir():
        return "lfw"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "fasseg"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    raise MeiyanError(
        f"{root}: expected images/ with masks/ or labels/, or {LFW_GT_DIR}/ with {LFW_IMAGE_DIR}/"
    )


def find_pairs(root: Path, skin_labels: Iterable[int] | None = None) -> list[PairSource]:
    """Every pair under ``root``, whatever its layout (see :func:`detect_layout`), undecoded.

    ``skin_labels`` overrides the FASSEG default (1, 4) and turns plain ``masks/`` into label
    maps; it is ignored for LFW, whose skin class is fixed.
    """
    root = Path(root)
    layout = detect_layout(root)
    if layout == "lfw":
        return lfw_sources(root)
    if layout == "fasseg":
        labels = FASSEG_SKIN_LABELS if skin_labels is None else skin_labels
        return folder_sources(root, "labels", labels)
    return folder_sources(root, skin_labels=skin_labels)


def load_pairs(root: Path, skin_labels: Iterable[int] | None = None) -> list[Pair]:
    """Every pair under ``root`` decoded (:func:`find_pairs`, then :meth:`PairSource.load`)."""
    return [s.load() for s in find_pairs(root, skin_labels)]
