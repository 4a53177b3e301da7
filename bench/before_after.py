"""The jobs' speed at an earlier commit and now, measured alternately in one sitting.

    .venv/bin/python bench/before_after.py [--base bdc1bb2] [--rounds 3] [--runs 5]
        [--only skin_mask,smooth]

The earlier commit is checked out into a temporary git worktree; each round runs a fresh process
on its sources, then one on this tree's (``sys.path`` first), each timing every job (or those
whose names hold a word of ``--only``; median of ``--runs`` after a warm-up, in ms) on the
freckled portrait reduced to 1280x1920 and at its full 6000x4000, with a makeup reference,
beside ``cv2.bilateralFilter`` as a yardstick of how fast the machine was at that moment.
Medians over the rounds are printed. Needs git history and ``../shared/data/portraits`` (or
``$MEIYAN_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))

CHILD = r"""
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import cv2
import meiyan
from meiyan.io.image import read_image
big = read_image(sys.argv[2]).pixels
h, w = big.shape[:2]
s = 1920 / max(h, w)
img = cv2.resize(big, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
ref = read_image(sys.argv[3]).pixels
runs = int(sys.argv[4])
jobs = {
    "beautify 1080p": lambda: meiyan.beautify(img),
    "beautify 24 MP": lambda: meiyan.beautify(big),
    "skin_mask 1080p": lambda: meiyan.skin_mask(img),
    "skin_mask 24 MP": lambda: meiyan.skin_mask(big),
    "smooth 1080p": lambda: meiyan.smooth(img),
    "smooth 24 MP": lambda: meiyan.smooth(big),
    "makeup(look) 1080p": lambda: meiyan.makeup(img, look="natural"),
    "makeup(reference) 1080p": lambda: meiyan.makeup(img, reference=ref),
    "cv2.bilateralFilter 1080p (yardstick)": lambda: cv2.bilateralFilter(img, 15, 40, 15),
}
only = [w for w in sys.argv[5].split(",") if w]
out = {}
for name, fn in jobs.items():
    if only and "yardstick" not in name and not any(w in name for w in only):
        continue
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    out[name] = statistics.median(times)
print(json.dumps(out))
"""


def measure(src: Path, runs: int, only: str) -> dict[str, float]:
    portraits = DATA / "portraits"
    proc = subprocess.run(
        [
            sys.executable, "-c", CHILD, str(src),
            str(portraits / "hires_pexels_ike_louie_natividad_2709388.jpg"),
            str(portraits / "makeup_ref_elegant_1.png"), str(runs), only,
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="bdc1bb2", help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated words: only the jobs "
                        "whose names hold one (e.g. skin_mask,smooth; the yardstick always)")
    args = parser.parse_args()
    if not (DATA / "portraits").is_dir():
        sys.exit(f"{DATA / 'portraits'} not found (set MEIYAN_DATA)")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), args.base],
                       cwd=REPO, check=True)  # fmt: skip
        try:
            before, after = [], []
            for _ in range(args.rounds):
                before.append(measure(tree / "src", args.runs, args.only))
                after.append(measure(REPO / "src", args.runs, args.only))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
    print(f"{args.rounds} alternating rounds, medians of {args.runs} runs each, ms\n")
    print(f"| job | {args.base} | now |")
    print("|---|---:|---:|")
    for name in before[0]:
        b = statistics.median(r[name] for r in before)
        a = statistics.median(r[name] for r in after)
        print(f"| {name} | {b:.0f} | {a:.0f} |")


if __name__ == "__main__":
    main()
