"""Face editing benchmark: the edit engines beside OpenCV's Telea inpainting.

    .venv/bin/python bench/edit.py [--data ../shared/data/celeba-hq-1k/validation] [--limit N]
                                   [--weights MODEL.onnx] [--time]

Engines: ``classic`` (the membrane fill through the colour strokes, cut at the sketch lines),
``telea`` (the baseline: no guidance) and, given ``--weights`` (an ONNX generator), ``sc-fegan``
(Jo and Park, ICCV 2019).

On photos never trained on, four kinds of hole per photo: free-form brush strokes (DeepFill v2's
generator) and a box over an eye, the nose and the mouth (from the face-mesh landmarks). The
guidance is what a user would draw: the sketch is the original's edges inside the hole (the
training data's Canny detector, :func:`meiyan.train.sc_fegan_data.canny_lines`), the colour is
the original's median colour along three lines across the hole. Reported per kind: in-hole PSNR
(dB) and sketch fidelity, the F1 score of the result's edges (same detector) against the sketch
within 2 pixels, inside the hole less a 3-pixel rim (seams do not count), pooled over the
photos. ``--time``: median wall time of one 512x512 edit (face analysis included).
``--figure``: ``docs/edit_astronaut.jpg``, two edits drawn in code on the public-domain sample
(a wider smile, a higher brow): the photo, the hole with its sketch and colour, the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from meiyan.edit import edit
from meiyan.face import analyze, region_mask
from meiyan.train.datasets import read_rgb
from meiyan.train.sc_fegan_data import brush_strokes, canny_lines, find_faces

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"
DATA = REPO.parent / "shared" / "data" / "celeba-hq-1k" / "validation"
KINDS = ("strokes", "eye", "nose", "mouth")
BOXES = {"eye": ("eyes",), "nose": ("nose",), "mouth": ("upper_lip", "lower_lip", "inner_mouth")}
TOLERANCE = 2
RIM = 3
COLOUR_LINES = 3


def box_hole(landmarks: np.ndarray, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """A box over one eye (the left one in the image), the nose or the mouth, 30% larger than
    the part (at least 24 pixels each way)."""
    part = region_mask(landmarks, BOXES[kind], shape) > 0.5
    if kind == "eye":
        count, labels = cv2.connectedComponents(part.astype(np.uint8))
        xs = [np.nonzero(labels == i)[1].mean() for i in range(1, count)]
        part = labels == 1 + int(np.argmin(xs))
    ys, xs = np.nonzero(part)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    hh = max((ys.max() - ys.min()) * 0.65, 12)
    hw = max((xs.max() - xs.min()) * 0.65, 12)
    hole = np.zeros(shape, bool)
    hole[max(int(cy - hh), 0) : int(cy + hh) + 1, max(int(cx - hw), 0) : int(cx + hw) + 1] = True
    return hole


def colour_lines(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """RGBA strokes: :data:`COLOUR_LINES` lines across the hole's box, each in the original's
    median colour along it, inside the hole only."""
    ys, xs = np.nonzero(hole)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    rgba = np.zeros((*hole.shape, 4), np.uint8)
    width = max(3, round(max(hole.shape) / 100))
    for i in range(1, COLOUR_LINES + 1):
        line = np.zeros(hole.shape, np.uint8)
        y = int(y0 + (y1 - y0) * i / (COLOUR_LINES + 1))
        tilt = int((y1 - y0) * 0.15) * (1 if i % 2 else -1)
        cv2.line(line, (int(x0), y - tilt), (int(x1), y + tilt), 1, width)
        line = (line > 0) & hole
        if line.any():
            rgba[line, :3] = np.median(image[line], axis=0).astype(np.uint8)
            rgba[line, 3] = 255
    return rgba


def f1_counts(result: np.ndarray, sketch: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``[matched result edges, result edges, matched sketch pixels, sketch pixels]`` in
    ``region``, matched meaning within :data:`TOLERANCE` pixels of the other set."""
    edges = canny_lines(result) & region
    sketch = sketch & region
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOLERANCE + 1,) * 2)
    near_sketch = cv2.dilate(sketch.astype(np.uint8), kernel) > 0
    near_edges = cv2.dilate(edges.astype(np.uint8), kernel) > 0
    return np.array([(edges & near_sketch).sum(), edges.sum(), (sketch & near_edges).sum(),
                     sketch.sum()], np.int64)


def f1(c: np.ndarray) -> float:
    precision = c[0] / max(c[1], 1)
    recall = c[2] / max(c[3], 1)
    return float(2 * precision * recall / max(precision + recall, 1e-12))


def hole_psnr(result: np.ndarray, image: np.ndarray, hole: np.ndarray) -> float:
    err = (result[hole].astype(np.float64) - image[hole].astype(np.float64)) ** 2
    return float(10 * np.log10(255.0**2 / max(err.mean(), 1e-10)))


def holes(image: np.ndarray, landmarks: np.ndarray, index: int) -> dict[str, np.ndarray]:
    shape = image.shape[:2]
    rng = np.random.default_rng([2019, index])
    out = {"strokes": cv2.resize(brush_strokes(rng, 256).astype(np.uint8), shape[::-1],
                                 interpolation=cv2.INTER_NEAREST) > 0}
    out.update({k: box_hole(landmarks, k, shape) for k in KINDS[1:]})
    return out


def run(data: Path, limit: int | None, weights: Path | None) -> dict:
    files = [s.image for s in find_faces(data)][:limit]
    engines = {"classic": {"engine": "classic"}, "telea": {"engine": "telea"}}
    if weights is not None:
        engines["sc-fegan"] = {"engine": "sc-fegan", "weights": weights}
    psnr = {e: {k: [] for k in KINDS} for e in engines}
    counts = {e: {k: np.zeros(4, np.int64) for k in KINDS} for e in engines}
    used = 0
    for index, path in enumerate(files):
        image = read_rgb(path)
        faces = analyze(image)
        if not faces:
            continue
        used += 1
        face = max(faces, key=lambda f: f.size)
        lines = canny_lines(image)
        for kind, hole in holes(image, face.landmarks, index).items():
            sketch = lines & hole
            colour = colour_lines(image, hole)
            region = cv2.erode(hole.astype(np.uint8), np.ones((2 * RIM + 1,) * 2, np.uint8)) > 0
            for name, options in engines.items():
                guide = {"sketch": sketch, "colour": colour} if name != "telea" else {}
                result = edit(image, hole, faces=[face], **guide, **options)
                psnr[name][kind].append(hole_psnr(result, image, hole))
                counts[name][kind] += f1_counts(result, sketch, region)
    table = {name: {kind: {"psnr": float(np.mean(psnr[name][kind])),
                           "f1": f1(counts[name][kind])} for kind in KINDS}
             for name in engines}
    for name in engines:
        table[name]["all"] = {"psnr": float(np.mean([v for k in KINDS for v in psnr[name][k]])),
                              "f1": f1(sum(counts[name].values()))}
    return {"photos": used, "table": table}


def edit_seconds(data: Path, weights: Path | None, repeats: int = 5) -> float:
    """Median wall time of one 512x512 edit (mouth box, sketch and colour; faces found)."""
    path = find_faces(data)[0].image
    image = cv2.resize(read_rgb(path), (512, 512), interpolation=cv2.INTER_AREA)
    face = max(analyze(image), key=lambda f: f.size)
    hole = box_hole(face.landmarks, "mouth", image.shape[:2])
    guide = {"sketch": canny_lines(image) & hole, "colour": colour_lines(image, hole)}
    engine = "sc-fegan" if weights is not None else "classic"
    edit(image, hole, engine=engine, weights=weights, **guide)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        edit(image, hole, engine=engine, weights=weights, **guide)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def _curve(points: np.ndarray, shape: tuple[int, int], width: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.polylines(out, [np.rint(points).astype(np.int32)], False, 1, width, cv2.LINE_AA)
    return out > 0


def figure_edits(image: np.ndarray, lm: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """(hole, sketch, colour RGBA) of the two figure edits, from the face-mesh landmarks."""
    shape = image.shape[:2]
    edits = []
    # A wider smile: the mouth's box, new lip outlines, lips and teeth coloured.
    hole = box_hole(lm, "mouth", shape)
    (x0, y0), (x1, _) = lm[61], lm[291]
    cx, w = (x0 + x1) / 2, (x1 - x0) * 0.62
    t = np.linspace(-1, 1, 40)
    xs = cx + t * w
    upper = np.stack([xs, y0 - 2 + 4 * (1 - t**2) ** 4 - 3 * t**2], 1)
    lower = np.stack([xs, y0 + 2 + 16 * (1 - t**2)], 1)
    gap = np.stack([xs, y0 + 3 + 8 * (1 - t**2)], 1)
    sketch = (_curve(upper, shape, 2) | _curve(lower, shape, 2) | _curve(gap, shape, 1)) & hole
    colour = np.zeros((*shape, 4), np.uint8)
    lips = _curve(np.stack([xs, y0 + 12 * (1 - t**2)], 1), shape, 4) & hole
    colour[lips] = (190, 80, 90, 255)
    edits.append((hole, sketch, colour))
    # A higher, arched brow on the left of the image.
    brow = region_mask(lm, "eyebrows", shape) > 0.5
    count, labels = cv2.connectedComponents(brow.astype(np.uint8))
    xs_c = [np.nonzero(labels == i)[1].mean() for i in range(1, count)]
    part = labels == 1 + int(np.argmin(xs_c))
    ys, xs_b = np.nonzero(part)
    hole = np.zeros(shape, bool)
    pad = max(8, int((ys.max() - ys.min()) * 1.2))
    hole[ys.min() - 2 * pad : ys.max() + pad, xs_b.min() - pad // 2 : xs_b.max() + pad // 2] = True
    t = np.linspace(0, 1, 40)
    arch = np.stack([xs_b.min() + t * (xs_b.max() - xs_b.min()),
                     ys.max() - 4 - (ys.max() - ys.min() + 8) * np.sin(np.pi * t**0.8)], 1)
    sketch = (_curve(arch, shape, 1) | _curve(arch + np.array([0, 5]), shape, 1)) & hole
    colour = np.zeros((*shape, 4), np.uint8)
    colour[_curve(arch + np.array([0, 2.5]), shape, 3) & hole] = (70, 50, 40, 255)
    edits.append((hole, sketch, colour))
    return edits


def make_figure(weights: Path | None, out: Path) -> None:
    """Rows of (photo, hole with sketch and colour, result), cropped to the face, x2."""
    image = read_rgb(SAMPLE)
    face = max(analyze(image), key=lambda f: f.size)
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    crop = (slice(max(y0 - 20, 0), y1 + 10), slice(max(x0 - 20, 0), x1 + 20))
    rows = []
    for hole, sketch, colour in figure_edits(image, face.landmarks):
        shown = image.copy()
        shown[hole] = 255
        strokes = colour[..., 3] > 127
        shown[strokes] = colour[strokes, :3]
        shown[sketch] = 0
        result = edit(image, hole, sketch=sketch, colour=colour, faces=[face], weights=weights,
                      engine="sc-fegan" if weights is not None else "classic")
        panels = [cv2.resize(p[crop], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
                  for p in (image, shown, result)]
        rows.append(np.concatenate(panels, 1))
    grid = np.concatenate(rows, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=None,
                        help="An SC-FEGAN ONNX file (default: the installed model).")
    parser.add_argument("--time", action="store_true", help="Also time one 512x512 edit.")
    parser.add_argument("--figure", action="store_true",
                        help="Only write docs/edit_astronaut.jpg.")
    args = parser.parse_args()
    if args.figure:
        make_figure(args.weights, REPO / "docs" / "edit_astronaut.jpg")
        return
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder (the celeba-hq-1k validation photos)")
    report = run(args.data, args.limit, args.weights)
    if args.time:
        report["edit_seconds_512"] = edit_seconds(args.data, args.weights)
    print(f"{report['photos']} photos")
    names = list(report["table"])
    print("| hole | " + " | ".join(f"{n} PSNR" for n in names) + " | "
          + " | ".join(f"{n} sketch F1" for n in names) + " |")
    print("|---|" + "---:|" * (2 * len(names)))
    for kind in (*KINDS, "all"):
        cells = [f"{report['table'][n][kind]['psnr']:.2f} dB" for n in names]
        cells += [f"{report['table'][n][kind]['f1']:.3f}" for n in names]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    if args.time:
        engine = "sc-fegan" if args.weights is not None else "classic"
        print(f"one 512x512 edit ({engine}): {report['edit_seconds_512']:.2f} s")
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "edit.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
