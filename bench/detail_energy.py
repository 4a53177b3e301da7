"""How much fine skin detail each ``meiyan.beautify`` preset removes, and how much hair keeps.

    .venv/bin/python bench/detail_energy.py [--data DIR] [--split test|train] [--presets a,b]

For each photo of ``DIR/fasseg-multipose/SPLIT`` (default ``../shared/data`` beside the
repository, or ``$MEIYAN_DATA``) the fine-detail energy of a region is the sum over its pixels
of ``(Y - G_2 * Y) ** 2``, the squared high-pass (Gaussian, sigma 2 pixels) of the luminance
(BT.601, of the whole photo). The share kept is that energy after ``meiyan.beautify`` over the
energy before, in labelled skin (labels 1 skin and 4 nose), its interior (farther than
``3 sigma`` from any other label, so that the contrast of an eye, a nostril or the jaw line
spilling across the label edge is left out), labelled hair (label 2, brows included) and, to
show what a preset does where it acts, labelled skin inside beautify's own
skin mask (``>= 0.5``, from :func:`meiyan.retouch.beautify.retouch`; it depends on the faces and the
skin method, not on the preset). The faces are found once per photo (:func:`meiyan.analyze`)
and given to every preset.

Per preset and region: median and mean of the per-photo shares and the pooled share (all
photos' energy after over all photos' energy before). A photo where no face is found comes
back unchanged and counts with a share of 1 (nothing removed) in the all-photos figures; the
faces-found figures leave it out. Targets (issue 12): ``strong`` keeps at most half of the
skin's energy, ``natural`` at most three quarters, hair keeps at least 95% (pooled shares over
all photos).
"""

from __future__ import annotations

import argparse
import os
import statistics
import warnings
from pathlib import Path

import cv2
import numpy as np

from meiyan import BeautifySettings, analyze, beautify
from meiyan.retouch.beautify import retouch
from meiyan.train.datasets import read_gray, read_rgb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
SIGMA = 2.0
SKIN_KEEP_AT_MOST = {"natural": 0.75, "strong": 0.50}
HAIR_KEEP_AT_LEAST = 0.95
REGIONS = ("skin", "skin interior", "hair", "skin in mask")
INTERIOR = 3 * SIGMA
"""``skin interior``: labelled skin farther than this (pixels) from any other label, beyond the
reach of the high-pass across a label edge (an eye's, a nostril's or the jaw line's contrast
spills into the skin beside it: that energy is the edge's, which retouching must keep)."""


def detail(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel fine-detail energy: the squared sigma-2 high-pass of the luminance (0-255)."""
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return (y - cv2.GaussianBlur(y, (0, 0), SIGMA)) ** 2


def load(split_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, RGB uint8 image, label map)`` for every labelled photo."""
    items = []
    for path in sorted((split_dir / "images").glob("*.jpg")):
        label = read_gray(split_dir / "labels" / f"{path.stem}.png")
        image = read_rgb(path)
        items.append((path.stem, image, label))
    return items


def share(after: float, before: float) -> float:
    return after / before if before > 0 else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument("--presets", default="natural,strong", help="comma-separated presets")
    args = parser.parse_args()
    split_dir = args.data / "fasseg-multipose" / args.split
    if not split_dir.is_dir():
        parser.error(f"{split_dir} not found (set --data or MEIYAN_DATA)")
    presets = args.presets.split(",")
    items = load(split_dir)

    # per preset and region: per-photo (before, after, face found)
    energy: dict[str, dict[str, list[tuple[float, float, bool]]]] = {
        p: {r: [] for r in REGIONS} for p in presets
    }
    coverage = []  # share of labelled skin inside beautify's mask, photos with a face
    found = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, image, label in items:
            faces = analyze(image)
            found += bool(faces)
            before = detail(image)
            skin = (label == 1) | (label == 4)
            hair = label == 2
            distance = cv2.distanceTransform(skin.astype(np.uint8), cv2.DIST_L2, 5)
            interior = distance > INTERIOR
            # The mask depends on the faces and the skin method, not on the strengths.
            mask = retouch(image, faces=faces).skin_mask() >= 0.5
            in_mask = skin & mask
            if faces:
                coverage.append(in_mask.sum() / max(1, skin.sum()))
            for name in presets:
                after = detail(beautify(image, BeautifySettings.preset(name), faces=faces))
                wheres = (skin, interior, hair, in_mask)
                for region, where in zip(REGIONS, wheres, strict=True):
                    b, a = float(before[where].sum()), float(after[where].sum())
                    if region == "skin in mask" and not where.any():
                        b = a = 0.0
                    energy[name][region].append((b, a, bool(faces)))

    print(f"FASSEG multipose, {args.split} split: {len(items)} photos, faces found in {found}")
    print(
        f"(beautify's skin mask covers {100 * np.mean(coverage):.0f}% of the labelled skin, "
        "mean over photos with a face)\n"
    )
    print("| preset | region | median | mean | pooled | pooled, faces found | target | pass |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for name in presets:
        for region in REGIONS:
            rows = energy[name][region]
            shares = [share(a, b) for b, a, f in rows if f or region != "skin in mask"]
            pooled = share(sum(a for _, a, _ in rows), sum(b for b, _, _ in rows))
            seen = [(b, a) for b, a, f in rows if f]
            pooled_found = share(sum(a for _, a in seen), sum(b for b, _ in seen))
            target, ok = "", ""
            if region == "skin" and name in SKIN_KEEP_AT_MOST:
                limit = SKIN_KEEP_AT_MOST[name]
                target, ok = f"<= {limit:.2f}", "pass" if pooled <= limit else "FAIL"
            elif region == "hair":
                target = f">= {HAIR_KEEP_AT_LEAST:.2f}"
                ok = "pass" if pooled >= HAIR_KEEP_AT_LEAST else "FAIL"
            print(
                f"| {name} | {region} | {statistics.median(shares):.3f} | "
                f"{np.mean(shares):.3f} | {pooled:.3f} | {pooled_found:.3f} | {target} | {ok} |"
            )
    print(
        f"\nShares of fine-detail energy kept (after / before). A photo without a face "
        f"({len(items) - found} here) counts as 1 (unchanged) in the median, mean and pooled "
        "share of skin and hair; 'pooled, faces found' leaves it out, and 'skin in mask' is "
        "over photos with a face only."
    )


if __name__ == "__main__":
    main()
