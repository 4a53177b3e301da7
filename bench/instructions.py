"""Instructions one call of a job executes, at an earlier commit and now: a count that the
machine's other tenants cannot move.

    .venv/bin/python bench/instructions.py [--base 4d0a0d8] [--jobs beautify,smooth,skin_mask]

Wall-clock times on this shared virtual machine move by 10-50% between runs minutes apart, so
a change of a few per cent cannot be seen in them. Valgrind's cachegrind counts the
instructions a process executes, which depend on the code alone when it runs on one thread
(``MEIYAN_THREADS=1``, OpenCV and OpenMP at one thread, so that no thread spins while it
waits). Each (tree, job) runs twice under cachegrind, with 2 and with 4 calls on the freckled
portrait reduced to 1280x1920; half the difference is one call (start-up, model loading and
the first call's set-up cancel). Not counted: the kernel's time (page faults: compare
allocators with wall-clock benchmarks) and how well the work spreads over two cores. Needs
``valgrind`` (Debian's package) and git history; two runs at a time, about 10 minutes per
job on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
PORTRAIT = DATA / "portraits" / "hires_pexels_ike_louie_natividad_2709388.jpg"

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import cv2
cv2.setNumThreads(1)
import meiyan
from meiyan.io.image import read_image
img = read_image(sys.argv[2]).pixels
h, w = img.shape[:2]
s = 1920 / max(h, w)
img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
job = getattr(meiyan, sys.argv[3])
for _ in range(int(sys.argv[4])):
    job(img)
"""


def count(src: Path, job: str, calls: int) -> int:
    """Instructions of a process that imports the tree at ``src`` and calls ``job`` ``calls``
    times."""
    env = os.environ | {"MEIYAN_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-c", CHILD, str(src), str(PORTRAIT), job, str(calls)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        sys.exit(f"cachegrind failed on {src} ({job} x{calls}): {proc.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def per_call(src: Path, job: str, pool: ThreadPoolExecutor) -> float:
    two, four = (pool.submit(count, src, job, n) for n in (2, 4))
    return (four.result() - two.result()) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="4d0a0d8", help="the earlier commit")
    parser.add_argument("--jobs", default="beautify", help="comma-separated meiyan functions")
    args = parser.parse_args()
    if not PORTRAIT.is_file():
        sys.exit(f"{PORTRAIT} not found (set MEIYAN_DATA)")
    try:
        subprocess.run(["valgrind", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        sys.exit("valgrind not found (Debian: apt-get install valgrind)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), args.base],
                       cwd=REPO, check=True)  # fmt: skip
        try:
            for job in args.jobs.split(","):
                before = per_call(tree / "src", job, pool)
                rows.append((job, before, per_call(REPO / "src", job, pool)))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
    print("Instructions per call on the 1280x1920 portrait, one thread, millions\n")
    print(f"| job | {args.base} | now | change |")
    print("|---|---:|---:|---:|")
    for job, before, after in rows:
        print(f"| {job} | {before / 1e6:,.0f} | {after / 1e6:,.0f} | {after / before - 1:+.1%} |")


if __name__ == "__main__":
    main()
