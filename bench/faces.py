"""Face-finding recall and time: composed scenes, FASSEG and the portraits.

    .venv/bin/python bench/faces.py [--scenes 24] [--seed 0]

Scenes: faces of the FASSEG test photos (|pan| <= 30 degrees, cut out around the face found on
the 512-pixel original) pasted, 1 to 9 per scene, without overlap, at sizes from 3% to 35% of
the long side, into 1920x1080 and 4000x3000 backgrounds of smooth random colour with texture.
A face counts as found when a detected face's centre lies in its pasted cut-out. Also every
FASSEG test photo and the three high-resolution portraits (one face each).

Compared in this process: today's ``meiyan.analyze`` at the default smallest face (0.08 of the
long side) and with ``min_face=0.02``, and the tiled path that every job but beautify used
before (``FaceDetector.detect`` as of commit bdc1bb2, loaded from git: 2% of the long side,
tiles over the whole frame). Recall is reported per face size, and over the faces of at least
the default smallest face.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from meiyan.face import analyze
from meiyan.io.image import read_image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
BEFORE = "bdc1bb2"
SIZES = (0.03, 0.05, 0.08, 0.12, 0.2, 0.35)


def old_detector():
    """The tiled ``FaceDetector`` of commit ``BEFORE``, or ``None`` without git history."""
    try:
        src = subprocess.run(
            ["git", "show", f"{BEFORE}:src/meiyan/face/detect.py"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("meiyan_face_detect_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(src, f"{BEFORE}:detect.py", "exec"), module.__dict__)
    # Its graphs were loaded by load_graph(make); today's also takes what it loads.
    load_graph = module.load_graph
    module.load_graph = lambda make: load_graph(make, "MediaPipe face models")
    return module.FaceDetector()


def cutouts() -> list[np.ndarray]:
    """Head cut-outs (the face box grown by 60%) of the frontal FASSEG test photos."""
    out = []
    for path in sorted((DATA / "fasseg-multipose" / "test" / "images").glob("*.jpg")):
        if not path.stem.endswith(("p0p0", "p0m30", "p0p30")):
            continue
        img = read_image(path).pixels
        faces = analyze(img)
        if not faces:
            continue
        x0, y0, x1, y1 = faces[0].bbox
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.6 * faces[0].size
        a, b = max(0, round(cy - side / 2)), max(0, round(cx - side / 2))
        out.append((img[a : round(cy + side / 2), b : round(cx + side / 2)], faces[0].size / side))
    return out


def background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    low = rng.random((6, 8, 3)).astype(np.float32)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    bg += 0.08 * cv2.resize(rng.random((h // 8, w // 8, 3), dtype=np.float32), (w, h))
    return (np.clip(bg, 0, 1) * 255).astype(np.uint8)


def scene(heads, shape, rng) -> tuple[np.ndarray, list[tuple[tuple[int, int, int, int], float]]]:
    """A background with 1-9 pasted heads and their boxes and face sizes (share of long side)."""
    h, w = shape
    img = background(h, w, rng)
    placed: list[tuple[tuple[int, int, int, int], float]] = []
    for _ in range(int(rng.integers(1, 10))):
        head, ratio = heads[int(rng.integers(len(heads)))]
        share = float(rng.choice(SIZES))
        side = round(share * max(h, w) / ratio)
        if side >= min(h, w):
            continue
        for _ in range(30):
            x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            box = (x, y, x + side, y + side)
            if all(box[2] <= b[0] or b[2] <= x or box[3] <= b[1] or b[3] <= y for b, _ in placed):
                img[y : y + side, x : x + side] = cv2.resize(head, (side, side))
                placed.append((box, share))
                break
    return img, placed


def hits(faces, boxes) -> list[bool]:
    centres = [((f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2) for f in faces]
    return [any(b[0] <= x < b[2] and b[1] <= y < b[3] for x, y in centres) for b in boxes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (DATA / "fasseg-multipose").is_dir():
        sys.exit(f"{DATA / 'fasseg-multipose'} not found (set MEIYAN_DATA)")
    before = old_detector()
    methods = {
        "analyze() (default 0.08)": lambda im: analyze(im),
        "analyze(min_face=0.02)": lambda im: analyze(im, min_face=0.02),
    }
    if before is not None:
        methods[f"tiled path before ({BEFORE})"] = before.detect
    else:
        print(f"(git history with {BEFORE} not found: the tiled path is not compared)")
    rng = np.random.default_rng(args.seed)
    heads = cutouts()
    scenes = [
        scene(heads, (1080, 1920) if i % 4 else (3000, 4000), rng) for i in range(args.scenes)
    ]
    singles = [
        (read_image(p).pixels, None)
        for p in sorted((DATA / "fasseg-multipose" / "test" / "images").glob("*.jpg"))
    ]
    singles += [(read_image(p).pixels, None) for p in sorted((DATA / "portraits").glob("hires_*"))]
    print(
        f"machine: {os.cpu_count()} CPUs; {len(scenes)} scenes with "
        f"{sum(len(b) for _, b in scenes)} faces; {len(singles)} single-face photos\n"
    )
    print(
        "| method | "
        + " | ".join(f"recall {s:.0%}" for s in SIZES)
        + " | recall >= 8% | single photos found | ms/scene 1080p | ms/scene 12 MP |"
    )
    print("|---|" + "---:|" * (len(SIZES) + 4))
    for name, find in methods.items():
        by_size: dict[float, list[bool]] = defaultdict(list)
        times: dict[int, list[float]] = defaultdict(list)
        for img, placed in scenes:
            t = time.perf_counter()
            faces = find(img)
            times[img.shape[0]].append(1000 * (time.perf_counter() - t))
            for ok, (_, share) in zip(hits(faces, [b for b, _ in placed]), placed, strict=True):
                by_size[share].append(ok)
        big = [ok for s in SIZES if s >= 0.08 for ok in by_size[s]]
        found = [bool(find(img)) for img, _ in singles]
        cells = [f"{np.mean(by_size[s]):.3f} ({len(by_size[s])})" for s in SIZES]
        cells += [f"{np.mean(big):.3f}", f"{sum(found)}/{len(found)}"]
        cells += [f"{statistics.median(times[h]):.0f}" for h in (1080, 3000)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
