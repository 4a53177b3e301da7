"""Skin beyond the face windows: how much labelled skin outside them each segmenter finds.

    .venv/bin/python bench/body_skin.py [--data DIR] [--limit N]

No labelled body shots are in the shared data; LFW Part Labels come closest: its labels mark
the neck and any chest, shoulders or hands as skin, and in its 250x250 photos much of that lies
below the U-Net's face window (:func:`meiyan.skin.framing.face_window`). For every
``lfw-parts/validation`` photo with one face found, the pixels outside the face window are
scored: recall (labelled skin found), precision (what is called skin and is) and IoU, for the
``unet`` segmenter with its body-skin colour model (:mod:`meiyan.skin.body`) and without, and
for ``adaptive``. Only the centred person is labelled; other people's skin counts as a false
positive here, so precision is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from meiyan.face import analyze
from meiyan.skin import SLOT
from meiyan.skin.framing import face_window
from meiyan.skin.unet_onnx import UNetSkinSegmenter
from meiyan.train.datasets import read_gray, read_rgb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--limit", type=int, default=None, help="first N photos only")
    args = parser.parse_args()
    root = args.data / "lfw-parts" / "validation"
    if not root.is_dir():
        parser.error(f"{root} not found (set --data or MEIYAN_DATA)")
    methods = {
        "unet (body colour model)": UNetSkinSegmenter(),
        "unet (face windows only)": UNetSkinSegmenter(body=False),
        "adaptive": SLOT.get("adaptive"),
    }
    sums = {name: np.zeros(2) for name in methods}  # right, called (outside the windows)
    times: dict[str, list[float]] = {name: [] for name in methods}
    truth_total, photos = 0, 0
    paths = sorted((root / "images").glob("*.jpg"))[: args.limit]
    for path in paths:
        rgb = read_rgb(path)
        truth = read_gray(root / "labels" / f"{path.stem}.png") == 1
        faces = analyze(rgb)
        if len(faces) != 1:
            continue
        inside = np.zeros(truth.shape, bool)
        win = face_window(faces[0].landmarks, faces[0].pose.yaw)
        inside[max(win.y0, 0) : max(win.y1, 0), max(win.x0, 0) : max(win.x1, 0)] = True
        outside = ~inside
        if not (truth & outside).any():
            continue
        photos += 1
        truth_total += int((truth & outside).sum())
        for name, seg in methods.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                pred = seg(rgb, faces) >= 0.5
                times[name].append(1000 * (time.perf_counter() - start))
            sums[name] += [(pred & truth & outside).sum(), (pred & outside).sum()]
    print(f"LFW Part Labels validation: {photos} photos with labelled skin outside the face "
          f"window ({truth_total:,} pixels)\n")
    print("| method | recall outside | precision outside | IoU outside | ms/photo |")
    print("|---|---:|---:|---:|---:|")
    for name, (right, called) in sums.items():
        recall = right / max(truth_total, 1)
        precision = right / max(called, 1)
        iou = right / max(truth_total + called - right, 1)
        print(f"| {name} | {recall:.3f} | {precision:.3f} | {iou:.3f} | "
              f"{statistics.median(times[name]):.0f} |")


if __name__ == "__main__":
    main()
