"""Blemish removal on real faces with synthetic spots, and the speed of ``meiyan.beautify``.

    .venv/bin/python bench/retouch.py [--spots 12] [--seed 0] [--runs 7] [--skip-speed]
                                      [--engine auto|classic|abpn]

Faces: the frontal and half-profile test photos of FASSEG (poses 0 and ±30 degrees, with
hand-made labels), the ``plain_*`` portraits and the three high-resolution portraits, these
reduced so the face is 450 pixels across (where 2-12 pixel spots are acne-sized); all from
``../shared/data`` (or ``$MEIYAN_DATA``). On each face ``--spots`` spots 2-12 pixels across,
15-40% deep, with a soft falloff (opacity ``2 ** -(2r/d) ** 3``: half at the nominal edge),
alternately dark (brown, melanin-like: blue falls most) and red (haemoglobin-like: green falls
most), are blended into certain skin: inside the face oval, away from eyes, brows, lips and
nostrils (landmark geometry, not the colour model under test; on FASSEG also labelled skin).

Reported: detection recall (a spot counts when a removed detection lies within its radius
plus 2 pixels); precision (removed detections matching a synthetic spot, over all removed
detections except those at a spot that the clean face shows too: natural spots are no false
alarm); PSNR to the clean face over the spots (disks of the spot's diameter) before and after
blemish removal alone (strength 1), and after plain smoothing alone (``meiyan.smooth``
defaults); PSNR outside skin (FASSEG labels other than skin and nose) after the default
``beautify``. Speed: median and fastest of ``--runs`` calls of ``beautify`` (defaults) on the
6000x4000 portrait, and on it and a second portrait reduced to a 1920-pixel long side (1080p),
in this process, after one warm-up; the image is in memory (decoding is not timed).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import meiyan
from meiyan.face import analyze
from meiyan.face.regions import region_mask
from meiyan.io.image import read_image
from meiyan.retouch.beautify import BeautifyResult, retouch
from meiyan.retouch.face_skin import feature_mask, spot_exclusion_mask

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
HIRES_FACE = 450  # face size the high-resolution portraits are reduced to
SPEED_IMAGE = "hires_pexels_ike_louie_natividad_2709388.jpg"  # 4000x6000, many freckles
SECOND_IMAGE = "hires_pexels_mateus_souza_3586798.jpg"  # 3456x5184


@dataclass(frozen=True)
class Spot:
    x: float
    y: float
    diameter: float
    kind: str  # "dark" or "red"


def load_faces() -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(name, RGB uint8, FASSEG label map or None)`` of every benchmark face."""
    out = []
    fasseg = DATA / "fasseg-multipose" / "test"
    for path in sorted((fasseg / "images").glob("*.jpg")):
        if not path.stem.endswith(("p0p0", "p0m30", "p0p30")):
            continue
        labels = cv2.imread(str(fasseg / "labels" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
        out.append((path.stem, read_image(path).pixels, labels))
    portraits = DATA / "portraits"
    for path in sorted(portraits.glob("plain_*.png")):
        out.append((path.stem, read_image(path).pixels, None))
    for path in sorted(portraits.glob("hires_*.jpg")):
        img = read_image(path).pixels
        faces = analyze(img)
        if not faces:
            continue
        s = HIRES_FACE / faces[0].size
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        out.append((path.stem, cv2.resize(img, size, interpolation=cv2.INTER_AREA), None))
    return out


def spot_area(rgb: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, float] | None:
    """Where spots may go (certain skin, by landmark geometry) and the face size."""
    faces = analyze(rgb)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.size)
    shape = rgb.shape[:2]
    size = face.size
    oval = region_mask(face.landmarks, "face_oval", shape) > 0.5
    k = max(1, round(0.05 * size))
    oval = cv2.erode(oval.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0
    features = feature_mask(face.landmarks, shape, 2.0 * size) > 0
    area = oval & ~features & (spot_exclusion_mask(face.landmarks, shape, 3.0 * size) == 0)
    if labels is not None:
        area &= labels == 1
    return area, size


def add_spots(
    rgb: np.ndarray, area: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Spot]]:
    """``rgb`` with ``n`` synthetic spots blended into ``area``, and the spots."""
    ys, xs = np.nonzero(area)
    spots: list[Spot] = []
    for _ in range(50 * n):
        if len(spots) == n or xs.size == 0:
            break
        i = rng.integers(xs.size)
        d = float(rng.uniform(2.0, 12.0))
        s = Spot(float(xs[i]), float(ys[i]), d, "dark" if len(spots) % 2 == 0 else "red")
        if all(math.hypot(s.x - o.x, s.y - o.y) > (s.diameter + o.diameter) / 2 + 8 for o in spots):
            spots.append(s)
    x = rgb.astype(np.float32)
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]].astype(np.float32)
    for s in spots:
        depth = rng.uniform(0.15, 0.4)
        r0, r1 = int(s.y - s.diameter * 1.5), int(s.y + s.diameter * 1.5) + 2
        c0, c1 = int(s.x - s.diameter * 1.5), int(s.x + s.diameter * 1.5) + 2
        r0, c0 = max(r0, 0), max(c0, 0)
        rho = np.hypot(xx[r0:r1, c0:c1] - s.x, yy[r0:r1, c0:c1] - s.y)
        opacity = 2.0 ** -((2 * rho / s.diameter) ** 3)
        tint = (0.85, 1.0, 1.15) if s.kind == "dark" else (0.1, 1.0, 0.6)
        factor = 1.0 - depth * opacity[..., None] * np.array(tint, np.float32)
        x[r0:r1, c0:c1] *= factor
    return np.clip(x + 0.5, 0, 255).astype(np.uint8), spots


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    d = a.astype(np.float64)[where] - b.astype(np.float64)[where]
    mse = float(np.mean(d * d))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def removed(result: BeautifyResult) -> list[tuple[float, float]]:
    """Centres (image pixels) of the spots that blemish removal took away."""
    return [(s.x, s.y) for s, amount in result.spots() if amount > 0]


def found_anyway(result: BeautifyResult) -> list[tuple[float, float, float]]:
    """Centres and radii of every spot found, removed or kept (freckles, moles)."""
    return [(s.x, s.y, s.radius) for s, _ in result.spots()]


def quality(n_spots: int, seed: int, engine: str = "auto") -> None:
    rng = np.random.default_rng(seed)
    found = total = tp = fp = 0
    by_kind: dict[str, list[int]] = {"dark": [0, 0], "red": [0, 0]}
    by_size: dict[str, list[int]] = {"2-5 px": [0, 0], "5-9 px": [0, 0], "9-12 px": [0, 0]}
    sq: dict[str, list[float]] = {"spotted": [], "blemish": [], "smooth": []}
    outside: list[float] = []
    faces = load_faces()
    used = 0
    for name, rgb, labels in faces:
        placed = spot_area(rgb, labels)
        if placed is None:
            print(f"  {name}: no face found, skipped")
            continue
        used += 1
        area, _ = placed
        spotted, spots = add_spots(rgb, area, n_spots, rng)
        natural = found_anyway(retouch(rgb, blemish=1.0, smooth=0, tone=0, whiten=0, engine=engine))
        res = retouch(spotted, blemish=1.0, smooth=0, tone=0, whiten=0, engine=engine)
        dets = removed(res)
        matched = set()
        for s in spots:
            hit = [
                i
                for i, (x, y) in enumerate(dets)
                if math.hypot(x - s.x, y - s.y) <= s.diameter / 2 + 2
            ]
            matched.update(hit)
            ok = bool(hit)
            found += ok
            total += 1
            by_kind[s.kind][0] += ok
            by_kind[s.kind][1] += 1
            bin_ = "2-5 px" if s.diameter < 5 else "5-9 px" if s.diameter < 9 else "9-12 px"
            by_size[bin_][0] += ok
            by_size[bin_][1] += 1
        for i, (x, y) in enumerate(dets):
            if i in matched:
                tp += 1
            elif not any(math.hypot(x - u, y - v) <= max(3.0, r) for u, v, r in natural):
                fp += 1
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        at = np.zeros(rgb.shape[:2], bool)
        for s in spots:
            at |= np.hypot(xx - s.x, yy - s.y) <= s.diameter
        sq["spotted"].append(psnr(rgb, spotted, at))
        sq["blemish"].append(psnr(rgb, res.image, at))
        sq["smooth"].append(psnr(rgb, meiyan.smooth(spotted), at))
        if labels is not None:
            out = meiyan.beautify(rgb, engine=engine)
            outside.append(psnr(rgb, out, ~np.isin(labels, (1, 4))))
    print(f"{used} faces ({len(faces) - used} skipped), {total} synthetic spots, seed {seed}\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| detection recall | {found / total:.3f} ({found}/{total}) |")
    for k, (a, b) in by_kind.items():
        print(f"| recall, {k} spots | {a / b:.3f} |")
    for k, (a, b) in by_size.items():
        print(f"| recall, {k} | {a / b:.3f} |")
    print(f"| precision | {tp / max(tp + fp, 1):.3f} ({tp}/{tp + fp}) |")
    before = statistics.mean(sq["spotted"])
    for key, label in (
        ("spotted", "spotted input"),
        ("blemish", "after blemish removal"),
        ("smooth", "after plain smoothing (meiyan.smooth)"),
    ):
        v = statistics.mean(sq[key])
        gain = "" if key == "spotted" else f" ({v - before:+.1f} dB)"
        print(f"| PSNR at the spots, {label} | {v:.1f} dB{gain} |")
    finite = [v for v in outside if math.isfinite(v)]
    label = f"| PSNR outside skin ({len(outside)} FASSEG faces), default beautify |"
    if finite:
        same = len(outside) - len(finite)
        print(
            f"{label} mean {statistics.mean(finite):.1f} dB, worst {min(finite):.1f} dB"
            + (f", identical on {same} |" if same else " |")
        )
    else:
        print(f"{label} identical everywhere |")


def timings(fn, runs: int) -> tuple[float, float]:
    """Median and minimum seconds of ``runs`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def speed(runs: int, engine: str = "auto") -> None:
    portraits = DATA / "portraits"
    big = read_image(portraits / SPEED_IMAGE).pixels
    cases = [(f"{SPEED_IMAGE} ({big.shape[1]}x{big.shape[0]})", big)]
    for name in (SPEED_IMAGE, SECOND_IMAGE):
        img = big if name == SPEED_IMAGE else read_image(portraits / name).pixels
        h, w = img.shape[:2]
        s = 1920 / max(h, w)
        hd = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        cases.append((f"{name} reduced to {hd.shape[1]}x{hd.shape[0]}", hd))
    print(
        f"\nspeed: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{cv2.getNumThreads()} OpenCV threads, {runs} runs each, load average before "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| image | beautify median | fastest |")
    print("|---|---:|---:|")
    for label, img in cases:
        median, best = timings(lambda img=img: meiyan.beautify(img, engine=engine), runs)
        print(f"| {label} | {median * 1000:.0f} ms | {best * 1000:.0f} ms |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (other users share this CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spots", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument(
        "--engine", default="auto", help="retouching engine (meiyan.retouch.beautify.SLOT)"
    )
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data not found at {DATA} (../shared/data or $MEIYAN_DATA)")
    if not args.skip_quality:
        quality(args.spots, args.seed, args.engine)
    if not args.skip_speed:
        speed(args.runs, args.engine)


if __name__ == "__main__":
    main()
