"""Readers for labelled skin data: plain folders, the FASSEG layout and LFW Part Labels.

Every reader returns a list of :class:`Pair` (an RGB uint8 photo and a boolean skin mask of the
same size). Three layouts are understood:

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

import cv2
import numpy as np

from meiyan.errors import ImageError, MeiyanError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
FASSEG_SKIN_LABELS = (1, 4)
LFW_GT_DIR = "parts_lfw_funneled_gt_images"
LFW_IMAGE_DIR = "lfw_funneled"


@dataclass
class Pair:
    """One labelled photo: ``image`` RGB uint8 ``(H, W, 3)``, ``mask`` bool ``(H, W)``."""

    name: str
    image: np.ndarray
    mask: np.ndarray


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_gray(path: Path) -> np.ndarray:
    """A single-channel image file (mask or label map) as stored, without scaling."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"cannot read mask {path}")
    if arr.ndim == 3:
        raise ImageError(f"{path}: expected a single-channel mask or label map, got colour")
    return arr


def _files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def _pair(name: str, image_path: Path, mask: np.ndarray) -> Pair:
    image = read_rgb(image_path)
    if mask.shape != image.shape[:2]:
        raise ImageError(
            f"{name}: mask size {mask.shape[::-1]} differs from image size {image.shape[1::-1]}"
        )
    return Pair(name, image, mask)


def read_folder(
    root: Path, mask_dir: str = "masks", skin_labels: Iterable[int] | None = None
) -> list[Pair]:
    """Pairs from ``root/images`` and ``root/<mask_dir>``, matched by file stem.

    With ``skin_labels`` the masks are label maps and skin is any of those labels; without, a
    mask is binary and every non-zero pixel is skin.
    """
    images, masks = _files(root / "images"), _files(root / mask_dir)
    names = sorted(images.keys() & masks.keys())
    if not names:
        raise MeiyanError(f"no matching files in {root / 'images'} and {root / mask_dir}")
    labels = None if skin_labels is None else np.array(sorted(set(skin_labels)))
    pairs = []
    for name in names:
        raw = read_gray(masks[name])
        mask = raw > 0 if labels is None else np.isin(raw, labels)
        pairs.append(_pair(name, images[name], mask))
    return pairs


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
    gt_dir = root / LFW_GT_DIR
    pairs = []
    for gt_path in sorted(gt_dir.glob("*.ppm")):
        name = gt_path.stem
        person = name.rsplit("_", 1)[0]
        image_path = root / LFW_IMAGE_DIR / person / f"{name}.jpg"
        if image_path.is_file():
            pairs.append(_pair(name, image_path, lfw_skin_mask(read_rgb(gt_path))))
    if not pairs:
        raise MeiyanError(f"no LFW Part Labels pairs under {root}")
    return pairs


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


def load_pairs(root: Path, skin_labels: Iterable[int] | None = None) -> list[Pair]:
    """Every pair under ``root``, whatever its layout (see :func:`detect_layout`).

    ``skin_labels`` overrides the FASSEG default (1, 4) and turns plain ``masks/`` into label
    maps; it is ignored for LFW, whose skin class is fixed.
    """
    root = Path(root)
    layout = detect_layout(root)
    if layout == "lfw":
        return read_lfw_parts(root)
    if layout == "fasseg":
        return read_fasseg(root, FASSEG_SKIN_LABELS if skin_labels is None else skin_labels)
    return read_folder(root, skin_labels=skin_labels)
