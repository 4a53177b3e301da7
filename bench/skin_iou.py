"""Skin segmentation accuracy and speed of every registered method on FASSEG multipose.

    .venv/bin/python bench/skin_iou.py [--data DIR] [--split test|train] [--methods a,b,...]

For each photo of ``DIR/fasseg-multipose/SPLIT`` (default ``../shared/data`` beside the
repository, or ``$MEIYAN_DATA``), the mask of each method is thresholded at 0.5 (128 of 255) and
compared with the labelled skin (labels 1 skin and 4 nose; eyes, eyebrows, lips, hair and
background are not skin). The table gives the mean intersection over union, the mean per head
pan angle (from the file names, e.g. ``personne08142p0m60`` = tilt 0, pan -60; +-15 and +-45 and
+-75 only in the training split), the share of photos where a face-based method found a face
(others: n/a) and the median milliseconds per photo (mask only, after one warm-up call; the
photos are about 370x512). Below the table: how often faces were found per pan angle, and the
mean absolute difference between the estimated yaw and the labelled pan.

The tuning of ``adaptive`` was done on the training split; the test split is for reporting.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
import warnings
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from meiyan.face import analyze
from meiyan.skin import SLOT, choices, skin_mask

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
_PAN = re.compile(r"p([mp]?)(\d+)([mp])(\d+)$")


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


def load(split_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, RGB uint8 image, boolean skin truth)`` for every labelled photo."""
    items = []
    for path in sorted((split_dir / "images").glob("*.jpg")):
        label = cv2.imread(str(split_dir / "labels" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        items.append((path.stem, image, (label == 1) | (label == 4)))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument(
        "--methods", default=None, help="comma-separated skin methods (default: all registered)"
    )
    args = parser.parse_args()
    split_dir = args.data / "fasseg-multipose" / args.split
    if not split_dir.is_dir():
        parser.error(f"{split_dir} not found (set --data or MEIYAN_DATA)")
    methods = args.methods.split(",") if args.methods else choices()
    items = load(split_dir)
    groups = sorted({abs(pan_of(stem)) for stem, _, _ in items})

    found_by_pan: dict[int, list[bool]] = defaultdict(list)
    yaw_error: dict[int, list[float]] = defaultdict(list)
    found: dict[str, bool] = {}
    for stem, image, _ in items:
        faces = analyze(image)
        pan = pan_of(stem)
        found[stem] = bool(faces)
        found_by_pan[abs(pan)].append(bool(faces))
        if faces:
            yaw_error[abs(pan)].append(abs(faces[0].pose.yaw - pan))

    header = ["method", "mean IoU", *[f"IoU {'±' if g else ''}{g}°" for g in groups]]
    header += ["faces found", "ms/image"]
    print(f"FASSEG multipose, {args.split} split: {len(items)} photos\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for name in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            skin_mask(items[0][1], name)  # warm-up: model loading is not timed
            scores: dict[int, list[float]] = defaultdict(list)
            times = []
            for stem, image, truth in items:
                start = time.perf_counter()  # the face pass included
                mask = skin_mask(image, name)
                times.append(1000 * (time.perf_counter() - start))
                scores[abs(pan_of(stem))].append(iou(mask, truth))
        every = [s for g in groups for s in scores[g]]
        uses_faces = SLOT.get(name, job="skin_mask").needs_faces
        rate = f"{100 * np.mean(list(found.values())):.0f}%" if uses_faces else "n/a"
        cells = [name, f"{np.mean(every):.3f}", *[f"{np.mean(scores[g]):.3f}" for g in groups]]
        cells += [rate, f"{statistics.median(times):.0f}"]
        print("| " + " | ".join(cells) + " |")

    print("\nFaces found and yaw error (|estimated yaw - labelled pan|, mean) per pan angle:\n")
    print("| pan | photos | faces found | yaw error |")
    print("|---:|---:|---:|---:|")
    for g in groups:
        err = f"{np.mean(yaw_error[g]):.1f}°" if yaw_error[g] else "n/a"
        rate = 100 * np.mean(found_by_pan[g])
        print(f"| {'±' if g else ''}{g}° | {len(found_by_pan[g])} | {rate:.0f}% | {err} |")
    near = [f for g in groups if g <= 60 for f in found_by_pan[g]]
    print(f"\nFaces found with |pan| <= 60°: {100 * np.mean(near):.1f}% of {len(near)} photos.")


if __name__ == "__main__":
    main()
