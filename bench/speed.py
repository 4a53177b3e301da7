"""Speed and memory of every job at 720p, 1080p, 4K and 24 MP, and of the command line.

    .venv/bin/python bench/speed.py [--runs 5] [--sizes 720p,1080p,4k,24mp] [--skip-cli]
                                    [--keep-freed-memory]

The portrait is ``hires_pexels_ike_louie_natividad_2709388.jpg`` (4000x6000, one face) from
``../shared/data/portraits`` (or ``$MEIYAN_DATA``), reduced so that its long side is 1280,
1920, 3840 or 6000 pixels (24 MP); the makeup reference is ``makeup_ref_elegant_1.png``. Each
(job, size) runs in a fresh process: one warm-up call (models load), then the median of
``--runs`` calls, the image already decoded; peak memory is the process's peak resident size
during the timed calls above what it held before them (``/proc/self/clear_refs``), so it counts
every temporary the job makes. The baselines run the same way: ``cv2.bilateralFilter(img, 15,
40, 15)`` on the whole frame, and a face-box bilateral (meiyan's face pass, then the same
filter on the face box only, as face-smoothing tools do). Command line: one 1080p photo from
process start to written result, and a batch of 20 1080p photos (``--jobs`` default), wall
time start-up included, median of 3, with meiyan's modules compiled to bytecode as a pip install
leaves them (an untimed first run writes it, even where ``PYTHONDONTWRITEBYTECODE`` is set).
The command line keeps freed memory for reuse (:func:`meiyan.keep_freed_memory`); the jobs run
with the default allocator unless ``--keep-freed-memory`` tunes their processes in the same way
(memory is then not comparable: what the warm-up freed is kept, and counted before the timed
calls).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
PORTRAIT = DATA / "portraits" / "hires_pexels_ike_louie_natividad_2709388.jpg"
REFERENCE = DATA / "portraits" / "makeup_ref_elegant_1.png"
SIZES = {"720p": 1280, "1080p": 1920, "4k": 3840, "24mp": 6000}
JOBS = (
    "analyze",
    "beautify",
    "skin_mask(auto)",
    "smooth(skin=auto)",
    "makeup(look)",
    "makeup(reference)",
    "bilateral 15/40/15 (baseline)",
    "face-box bilateral (baseline)",
)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def portrait(long_side: int):
    import cv2

    from meiyan.io.image import read_image

    img = read_image(PORTRAIT).pixels
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    if s < 1:
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return img


def child(job: str, size: str, runs: int, keep_freed: bool) -> None:
    """Time one job on one size in this process; print a JSON record."""
    import warnings

    import cv2
    import numpy as np

    import meiyan
    from meiyan.io.image import read_image

    if keep_freed and not meiyan.keep_freed_memory():
        sys.exit("--keep-freed-memory: glibc's mallopt is not available here")
    warnings.simplefilter("ignore")
    img = portrait(SIZES[size])
    ref = read_image(REFERENCE).pixels
    faces = meiyan.analyze(img)

    def face_box_bilateral() -> np.ndarray:
        out = img.copy()
        for f in meiyan.analyze(img):
            x0, y0, x1, y1 = (max(0, round(v)) for v in f.bbox)
            out[y0:y1, x0:x1] = cv2.bilateralFilter(img[y0:y1, x0:x1], 15, 40, 15)
        return out

    fns = {
        "analyze": lambda: meiyan.analyze(img),
        "beautify": lambda: meiyan.beautify(img),
        "skin_mask(auto)": lambda: meiyan.skin_mask(img),
        "smooth(skin=auto)": lambda: meiyan.smooth(img),
        "makeup(look)": lambda: meiyan.makeup(img, look="natural"),
        "makeup(reference)": lambda: meiyan.makeup(img, reference=ref),
        "bilateral 15/40/15 (baseline)": lambda: cv2.bilateralFilter(img, 15, 40, 15),
        "face-box bilateral (baseline)": face_box_bilateral,
    }
    fn = fns[job]
    fn()  # warm-up: models load, graphs prime
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _rss_kb("VmRSS:")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    peak = _rss_kb("VmHWM:") - before
    shape = "x".join(str(v) for v in img.shape[1::-1])
    record = {"job": job, "size": size, "shape": shape, "faces": len(faces)}
    record |= {"ms": statistics.median(times), "peak_mb": peak / 1024}
    print(json.dumps(record))


def cli_times(tmp: Path) -> dict[str, float]:
    """Seconds for one 1080p photo and for 20 of them, start-up included."""
    from PIL import Image

    img = portrait(1920)
    one, many = tmp / "one", tmp / "many"
    one.mkdir()
    many.mkdir()
    Image.fromarray(img).save(one / "p.jpg", quality=95)
    for i in range(20):
        Image.fromarray(img if i % 2 else img[:, ::-1].copy()).save(
            many / f"p{i:02}.jpg", quality=95
        )
    exe = Path(sys.executable).with_name("meiyan")
    # As installed by pip, which compiles the modules: bytecode is written (to a cache of its
    # own) by an untimed first run even where PYTHONDONTWRITEBYTECODE is set.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    subprocess.run([str(exe), "beautify", str(one), "-o", str(tmp / "warm")], check=True,
                   capture_output=True, env=env)  # fmt: skip
    out: dict[str, float] = {}
    for name, src in (("one photo", one), ("20 photos", many)):
        walls = []
        for k in range(3):
            dest = tmp / f"out_{name[:3]}_{k}"
            start = time.perf_counter()
            subprocess.run([str(exe), "beautify", str(src), "-o", str(dest)], check=True,
                           capture_output=True, env=env)  # fmt: skip
            walls.append(time.perf_counter() - start)
            shutil.rmtree(dest)
        out[name] = statistics.median(walls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated job names")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument(
        "--keep-freed-memory", action="store_true", help="tune the jobs' allocator as the CLI does"
    )
    parser.add_argument("--child", nargs=2, metavar=("JOB", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.runs, args.keep_freed_memory)
        return
    if not PORTRAIT.is_file():
        sys.exit(f"{PORTRAIT} not found (set MEIYAN_DATA)")
    sizes = args.sizes.split(",")
    jobs = [j for j in JOBS if j in args.jobs.split(",")]
    results: dict[tuple[str, str], dict] = {}
    for job in jobs:
        for size in sizes:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", job, size, "--runs", str(args.runs)]
                + ["--keep-freed-memory"] * args.keep_freed_memory,
                capture_output=True,
                text=True,
                check=True,
            )
            results[job, size] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end; median of {args.runs} runs, ms (peak MB)"
        + ("; allocator tuned as the CLI's" if args.keep_freed_memory else "")
        + "\n"
    )
    shapes = [results[jobs[0], s]["shape"] for s in sizes]
    print(
        "| job | "
        + " | ".join(f"{s} ({sh})" for s, sh in zip(sizes, shapes, strict=True))
        + " | 24 MP / 1080p |"
    )
    print("|---|" + "---:|" * (len(sizes) + 1))
    for job in jobs:
        cells = [f"{results[job, s]['ms']:.0f} ({results[job, s]['peak_mb']:.0f})" for s in sizes]
        ratio = ""
        if "24mp" in sizes and "1080p" in sizes:
            ratio = f"{results[job, '24mp']['ms'] / results[job, '1080p']['ms']:.1f}x"
        print(f"| {job} | " + " | ".join(cells) + f" | {ratio} |")
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as tmp:
            cli = cli_times(Path(tmp))
        print(f"\nmeiyan beautify, one 1080p photo from process start: {cli['one photo']:.2f} s")
        print(
            f"meiyan beautify, 20 1080p photos: {cli['20 photos']:.2f} s = "
            f"{20 / cli['20 photos']:.1f} images/s, start-up included"
        )


if __name__ == "__main__":
    main()
