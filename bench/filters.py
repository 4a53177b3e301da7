"""Speed of every filter and of the default smoothing pipeline, beside OpenCV's bilateral filter.

    .venv/bin/python bench/filters.py [--runs 5] [--sizes 1080p,4k]

Input: the shipped public-domain sample portrait, resized to each frame size. Times are
medians of --runs runs in this one process; the baseline is
``cv2.bilateralFilter(img, 15, 40, 15)`` over the full uint8 frame. Filters run on float32 with
the pipeline's parameters for that frame size, shown beside each time. Peak memory of
``meiyan.smooth(..., skin="none")`` is measured in a fresh subprocess (Linux): the process's peak
resident memory during the call (the peak is reset through /proc/self/clear_refs just before
it), and that peak less the memory held before.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import meiyan
from meiyan._array import to_float32
from meiyan.retouch.smooth import FILTER_SETTINGS, working_scale

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}

PEAK_SCRIPT = """
import re, sys, cv2, meiyan
def status(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
w, h = int(sys.argv[1]), int(sys.argv[2])
img = cv2.resize(cv2.imread(sys.argv[3])[..., ::-1], (w, h), interpolation=cv2.INTER_CUBIC)
meiyan.smooth(img[:64, :64].copy(), skin="none")  # load code paths before the baseline
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
meiyan.smooth(img, skin="none")
print(status("VmHWM"), status("VmHWM") - before)
"""


def frame(size: tuple[int, int]) -> np.ndarray:
    img = cv2.imread(str(SAMPLE))[..., ::-1]
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_CUBIC))


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def peak_mb(size: tuple[int, int]) -> tuple[float, float]:
    """Peak resident memory of the whole process during the call, and its growth over before."""
    """Peak resident memory of the whole process during the call, and its growth over before."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(size[0]), str(size[1]), str(SAMPLE)],
        check=True,
        capture_output=True,
        text=True,
    )
    peak, growth = out.stdout.split()
    return float(peak), float(growth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1080p,4k")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",")]

    print(
        f"machine: {platform.processor() or platform.machine()}, {cv2.getNumThreads()} threads, "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}, "
        f"median of {args.runs} runs\n"
    )
    print("| what | " + " | ".join(f"{s} ms" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    rows: dict[str, list[str]] = {}
    ratios: list[str] = []
    for s in sizes:
        img = frame(SIZES[s])
        x = to_float32(img)
        base = median_ms(lambda img=img: cv2.bilateralFilter(img, 15, 40, 15), args.runs)
        ours = median_ms(lambda img=img: meiyan.smooth(img, skin="none"), args.runs)
        rows.setdefault("cv2.bilateralFilter(img, 15, 40, 15) (baseline)", []).append(f"{base:.1f}")
        rows.setdefault('meiyan.smooth(img, skin="none") (default pipeline)', []).append(
            f"{ours:.1f}"
        )
        for name in sorted(FILTER_SETTINGS):
            fn, params = FILTER_SETTINGS[name](working_scale(x.shape))
            ms = median_ms(lambda fn=fn, params=params, x=x: fn(x, **params), args.runs)
            shown = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
            rows.setdefault(f"filters.{name}", []).append(f"{ms:.1f} ({shown})")
        ratios.append(f"{s}: smooth is {base / ours:.1f}x faster than the baseline")
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    for r in ratios:
        print(r)
    for s in sizes:
        peak, growth = peak_mb(SIZES[s])
        print(
            f"{s}: smooth(skin='none') peak resident memory {peak:.0f} MB for the whole process "
            f"(Python, libraries and input included), {growth:.0f} MB above what it held before"
        )


if __name__ == "__main__":
    main()
