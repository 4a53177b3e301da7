"""Skin segmentation accuracy and speed of every registered method on FASSEG, LFW and CelebA-HQ.

    .venv/bin/python bench/skin_iou.py [--data DIR] [--split test|train] [--methods a,b,...]
        [--datasets fasseg,lfw,celeba] [--limit N] [--enlarge K]

The data is ``DIR`` (default ``../shared/data`` beside the repository, or ``$MEIYAN_DATA``); the
``test`` split is FASSEG's ``test`` and the ``validation`` folders of LFW and CelebA-HQ, ``train``
their training folders. Every mask is thresholded at 0.5 (128 of 255). One table per dataset,
one row per method: the registered ``skin`` engines (``auto`` as chosen for the ``skin_mask``
job) and ``beautify``, the skin mask that ``meiyan beautify --save-masks`` writes (the default
``natural`` settings; :meth:`BeautifyResult.skin_mask`, zero outside the face crops).

- FASSEG multipose (about 370x512, studio light, poses from profile to profile): mean
  intersection over union with the labelled skin (labels 1 skin and 4 nose; eyes, eyebrows,
  lips, hair and background are not skin), and the mean per head pan angle (from the file
  names, e.g. ``personne08142p0m60`` = tilt 0, pan -60; +-15, +-45 and +-75 only in the training
  split). Below the table: where each mask is wrong (pooled over the photos, as shares of the
  labelled skin: skin missed; false skin on background, on hair at the brows, on other hair,
  on eyes and on the mouth), how often faces were found per pan angle, and the mean absolute
  difference between the estimated yaw and the labelled pan.
- LFW Part Labels (250x250, in the wild): mean IoU with label 1. LFW's skin includes eyes,
  eyebrows and lips, which every face-based method cuts out as it should for retouching: those
  are scored as they are (the features count as missed skin), and ``unet (network alone)`` is
  the U-Net without its landmark cut-outs (``UNetSkinSegmenter(guarded=())``), the figure to
  compare with other LFW results. Only the centred person is labelled, so every method is given
  the face found nearest the photo's centre alone (other people's skin is background in the
  labels); skin a method finds on other people anyway counts against it.
- CelebA-HQ (512x512, aligned faces; hair masks only): hair taken for skin, the share of the
  hair pixels with mask >= 0.5 (mean over photos with hair), and the share of photos with more
  than 5% of their hair marked skin. Lower is better.

Each table also gives the share of photos where a face was found (face-based methods; others:
n/a; a face-based method without a face falls back to the colour rule, ``beautify`` leaves the
photo alone: an empty mask) and the median milliseconds per photo after one warm-up call: the
face pass (run once per photo, its time added to each face-based method's) plus the mask; for
``beautify`` the whole retouching, of which the mask is a by-product. ``--limit N`` takes N
photos of each dataset, evenly spaced in name order, for quick runs. ``--enlarge K`` enlarges
every photo (cubic) and its labels (nearest) K times first: the large-photo paths (over about
1.6 MP the U-Net makes its mask at a reduced size) scored against the same labels.

The tuning of ``adaptive`` was done on FASSEG's training split; the test split is for reporting.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from meiyan.face import Face, analyze
from meiyan.skin import FALLBACK, SLOT, choices, skin_mask
from meiyan.train.datasets import read_gray, read_rgb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
DATASETS = ("fasseg", "lfw", "celeba")
ALONE = "unet (network alone)"
BEAUTIFY = "beautify"
HAIR_LIMIT = 0.05
"""A photo counts as failed on CelebA-HQ when more than this share of its hair is skin."""
_PAN = re.compile(r"p([mp]?)(\d+)([mp])(\d+)$")

Segmenter = Callable[[np.ndarray, Sequence[Face]], np.ndarray]


def pan_of(stem: str) -> int:
    """The pan angle in degrees encoded at the end of a Pointing'04 file name."""
    m = _PAN.search(stem)
    if m is None:
        raise ValueError(f"no pose in file name {stem!r}")
    return (-1 if m.group(3) == "m" else 1) * int(m.group(4))


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of ``mask >= 0.5`` and the boolean ``truth``."""
    pred = mask >= 0.5
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def hair_as_skin(mask: np.ndarray, hair: np.ndarray) -> float:
    """Share of the ``hair`` pixels where ``mask >= 0.5`` (NaN without hair)."""
    n = hair.sum()
    return float(np.logical_and(mask >= 0.5, hair).sum() / n) if n else float("nan")


def spread(paths: list[Path], limit: int | None) -> list[Path]:
    """``limit`` of ``paths`` evenly spaced (all of them for ``None``)."""
    if limit is None or limit >= len(paths):
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]


@dataclass
class Item:
    """One photo: its name, RGB uint8 pixels, boolean truth, and the faces found with the
    milliseconds their search took."""

    stem: str
    image: np.ndarray
    truth: np.ndarray
    faces: list[Face]
    face_ms: float
    found: int = 0
    """Faces found (before keeping the centred one alone, where that is done)."""


def centred(faces: list[Face], shape: tuple[int, ...]) -> list[Face]:
    """The face nearest the photo's centre, alone (LFW labels only the centred person)."""
    if not faces:
        return faces
    cy, cx = shape[0] / 2, shape[1] / 2
    return [min(faces, key=lambda f: np.hypot(f.bbox[0] + f.bbox[2] - 2 * cx,
                                              f.bbox[1] + f.bbox[3] - 2 * cy))]


def load(
    folder: Path,
    truth_dir: str,
    truth_of: Callable[[np.ndarray], np.ndarray],
    limit: int | None,
    centre_only: bool = False,
    enlarge: float = 1.0,
) -> list[Item]:
    """Every photo of ``folder/images`` with the truth from ``folder/truth_dir/NAME.png``, and
    its faces (timed; with ``centre_only`` the centred face alone); ``enlarge``: photo (cubic)
    and truth (nearest) enlarged this many times first."""
    items = []
    for path in spread(sorted((folder / "images").glob("*.jpg")), limit):
        image = read_rgb(path)
        truth = truth_of(read_gray(folder / truth_dir / f"{path.stem}.png"))
        if enlarge != 1.0:
            size = (round(image.shape[1] * enlarge), round(image.shape[0] * enlarge))
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            grown = cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            truth = grown.astype(truth.dtype)  # booleans stay booleans, label maps label maps
        start = time.perf_counter()
        faces = list(analyze(image))
        found = len(faces)
        if centre_only:
            faces = centred(faces, image.shape)
        ms = 1000 * (time.perf_counter() - start)
        items.append(Item(path.stem, image, truth, faces, ms, found))
    return items


def registered(name: str) -> Segmenter:
    def run(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return skin_mask(image, name, faces=faces)

    return run


def network_alone() -> Segmenter:
    """The U-Net without landmark cut-outs; the colour fall-back without a face, as ``unet``."""
    from meiyan.skin.unet_onnx import UNetSkinSegmenter

    segmenter = UNetSkinSegmenter(guarded=())

    def run(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return segmenter(image, faces) if faces else skin_mask(image, FALLBACK)

    return run


def beautify_mask(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """The skin mask of ``meiyan beautify --save-masks``: the default settings' retouching."""
    from meiyan.retouch.beautify import retouch

    return retouch(image, faces=list(faces)).skin_mask()


def segmenters(methods: list[str], extra: Sequence[str]) -> list[tuple[str, Segmenter, bool]]:
    """``(row name, segmenter, uses faces)`` of ``methods`` (plus ``extra`` rows: the network
    alone after ``unet``, where ``unet`` is run)."""
    out = []
    for name in methods:
        if name == BEAUTIFY:
            out.append((BEAUTIFY, beautify_mask, True))
            continue
        engine = SLOT.get(name, job="skin_mask")
        label = f"auto ({SLOT.resolve(name, job='skin_mask')})" if name == "auto" else name
        out.append((label, registered(name), engine.needs_faces))
        if name == "unet" and ALONE in extra:
            out.append((ALONE, network_alone(), True))
    return out


def run(items: list[Item], segmenter: Segmenter, uses_faces: bool):
    """The mask of each photo and the milliseconds per photo (the face pass added for
    face-based methods)."""
    times: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segmenter(items[0].image, items[0].faces)  # warm-up: model loading is not timed
        masks = []
        for item in items:
            start = time.perf_counter()
            mask = segmenter(item.image, item.faces)
            ms = 1000 * (time.perf_counter() - start)
            times.append(ms + (item.face_ms if uses_faces else 0.0))
            masks.append(mask)
    return masks, times


def faces_cell(items: list[Item], uses_faces: bool) -> str:
    return f"{100 * np.mean([bool(i.faces) for i in items]):.0f}%" if uses_faces else "n/a"


def print_header(header: list[str]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")


def print_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def faces_summary(items: list[Item]) -> None:
    many = sum(i.found > 1 for i in items)
    none = sum(not i.faces for i in items)
    face_ms = statistics.median(i.face_ms for i in items)
    print(
        f"\nFace pass: median {face_ms:.0f} ms per photo; no face found in {none} photo(s), "
        f"more than one in {many}."
    )


def wrong_pixels(items: list[Item], labels: list[np.ndarray], masks: list[np.ndarray]) -> list[str]:
    """Where a method's FASSEG mask is wrong, pooled over the photos, as shares of the labelled
    skin: skin missed, and false skin on background, on hair at the brows (the face mesh's brow
    polygons grown by 3% of the face's size: FASSEG labels brows as hair), on other hair (the
    hairline, beard), on eyes and on the mouth."""
    from meiyan.face import region_mask

    counts = np.zeros(6)
    skin = 0
    for item, label, mask in zip(items, labels, masks, strict=True):
        pred = mask >= 0.5
        brows = np.zeros(label.shape, bool)
        for face in item.faces:
            k = 2 * max(1, round(0.03 * face.size)) + 1
            polys = region_mask(face.landmarks, "eyebrows", label.shape)
            brows |= cv2.dilate((polys >= 0.5).astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        hair = pred & (label == 2)
        counts += [(~pred & item.truth).sum(), (pred & (label == 0)).sum(), (hair & brows).sum(),
                   (hair & ~brows).sum(), (pred & (label == 3)).sum(), (pred & (label == 5)).sum()]
        skin += item.truth.sum()
    return [f"{100 * c / skin:.1f}%" for c in counts]


def fasseg(
    folder: Path, methods: list[str], limit: int | None, split: str, enlarge: float
) -> None:
    items = load(folder, "labels", lambda label: label, limit, enlarge=enlarge)
    labels = [item.truth for item in items]
    for item, label in zip(items, labels, strict=True):
        item.truth = (label == 1) | (label == 4)
    groups = sorted({abs(pan_of(i.stem)) for i in items})
    header = ["method", "mean IoU", *[f"IoU {'±' if g else ''}{g}°" for g in groups]]
    print(f"FASSEG multipose, {split} split: {len(items)} photos, IoU with skin (labels 1|4)\n")
    print_header([*header, "faces found", "ms/photo"])
    wrong = []
    for label, segmenter, uses_faces in segmenters(methods, ()):
        masks, times = run(items, segmenter, uses_faces)
        scores: dict[int, list[float]] = defaultdict(list)
        for item, mask in zip(items, masks, strict=True):
            scores[abs(pan_of(item.stem))].append(iou(mask, item.truth))
        every = [s for g in groups for s in scores[g]]
        cells = [label, f"{np.mean(every):.3f}", *[f"{np.mean(scores[g]):.3f}" for g in groups]]
        print_row([*cells, faces_cell(items, uses_faces), f"{statistics.median(times):.0f}"])
        wrong.append([label, *wrong_pixels(items, labels, masks)])
    faces_summary(items)

    print("\nWhere the masks are wrong (pooled, shares of the labelled skin):\n")
    print_header(["method", "skin missed", "background", "hair at the brows", "other hair",
                  "eyes", "mouth"])
    for row in wrong:
        print_row(row)

    print("\nFaces found and yaw error (|estimated yaw - labelled pan|, mean) per pan angle:\n")
    print("| pan | photos | faces found | yaw error |")
    print("|---:|---:|---:|---:|")
    for g in groups:
        group = [i for i in items if abs(pan_of(i.stem)) == g]
        errors = [abs(i.faces[0].pose.yaw - pan_of(i.stem)) for i in group if i.faces]
        err = f"{np.mean(errors):.1f}°" if errors else "n/a"
        rate = 100 * np.mean([bool(i.faces) for i in group])
        print(f"| {'±' if g else ''}{g}° | {len(group)} | {rate:.0f}% | {err} |")
    near = [bool(i.faces) for i in items if abs(pan_of(i.stem)) <= 60]
    print(f"\nFaces found with |pan| <= 60°: {100 * np.mean(near):.1f}% of {len(near)} photos.")


def lfw(folder: Path, methods: list[str], limit: int | None, split: str, enlarge: float) -> None:
    items = load(folder, "labels", lambda label: label == 1, limit, centre_only=True,
                 enlarge=enlarge)
    print(f"LFW Part Labels, {split}: {len(items)} photos, IoU with skin (label 1)\n")
    print_header(["method", "mean IoU", "faces found", "ms/photo"])
    for label, segmenter, uses_faces in segmenters(methods, (ALONE,)):
        masks, times = run(items, segmenter, uses_faces)
        scores = [iou(mask, item.truth) for item, mask in zip(items, masks, strict=True)]
        cells = [label, f"{np.mean(scores):.3f}", faces_cell(items, uses_faces)]
        print_row([*cells, f"{statistics.median(times):.0f}"])
    print(
        "\nLFW labels eyes, eyebrows and lips as skin: every method but the network alone is "
        "scored as it is, its cut-out features counted as missed skin."
    )
    faces_summary(items)


def celeba(
    folder: Path, methods: list[str], limit: int | None, split: str, enlarge: float
) -> None:
    items = load(folder, "hair", lambda hair: hair >= 128, limit, enlarge=enlarge)
    with_hair = sum(bool(i.truth.any()) for i in items)
    print(
        f"CelebA-HQ, {split}: {len(items)} photos ({with_hair} with hair), hair taken for skin "
        "(lower is better)\n"
    )
    print_header(
        ["method", "hair as skin", f"photos > {HAIR_LIMIT:.0%}", "faces found", "ms/photo"]
    )
    for label, segmenter, uses_faces in segmenters(methods, ()):
        masks, times = run(items, segmenter, uses_faces)
        shares = np.array(
            [hair_as_skin(mask, item.truth) for item, mask in zip(items, masks, strict=True)]
        )
        shares = shares[~np.isnan(shares)]
        over = int((shares > HAIR_LIMIT).sum())
        cells = [label, f"{100 * shares.mean():.2f}%", f"{100 * over / len(shares):.1f}% ({over})"]
        print_row([*cells, faces_cell(items, uses_faces), f"{statistics.median(times):.0f}"])
    faces_summary(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated skin methods and {BEAUTIFY!r} (default: all registered, beautify)",
    )
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"comma-separated, of {','.join(DATASETS)}"
    )
    parser.add_argument("--limit", type=int, default=None, help="photos per dataset (default all)")
    parser.add_argument("--enlarge", type=float, default=1.0,
                        help="enlarge photos and labels this many times (large-photo paths)")
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else [*choices(), BEAUTIFY]
    unknown = sorted(set(methods) - {*choices(), BEAUTIFY})
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {[*choices(), BEAUTIFY]}")
    datasets = args.datasets.split(",")
    if set(datasets) - set(DATASETS):
        parser.error(f"unknown dataset(s) {sorted(set(datasets) - set(DATASETS))}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.enlarge < 1.0:
        parser.error("--enlarge must be at least 1")
    folders = {
        "fasseg": args.data / "fasseg-multipose" / args.split,
        "lfw": args.data / "lfw-parts" / ("validation" if args.split == "test" else "train"),
        "celeba": args.data / "celeba-hq-1k" / ("validation" if args.split == "test" else "train"),
    }
    runners = {"fasseg": fasseg, "lfw": lfw, "celeba": celeba}
    for n, name in enumerate(d for d in DATASETS if d in datasets):
        if not folders[name].is_dir():
            parser.error(f"{folders[name]} not found (set --data or MEIYAN_DATA)")
        if n:
            print("\n")
        start = time.perf_counter()
        runners[name](folders[name], methods, args.limit, folders[name].name, args.enlarge)
        print(f"\n({name}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
