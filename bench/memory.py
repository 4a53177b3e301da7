"""Peak memory of the commands on a 100-megapixel photo (the default pixel limit).

    .venv/bin/python bench/memory.py [--commands smooth,mask,beautify]

The high-resolution portrait of ``../shared/data/portraits`` (or ``$MEIYAN_DATA``) enlarged to
8333x12000 (99.996 MP), written as a JPEG; each command runs on it in a fresh process and the
process's peak resident memory (``ru_maxrss`` of the child) and wall time are reported, beside
the decoded image's own size (300 MB as 8-bit RGB). Target (issue 17): ``smooth`` and ``mask``
under 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
PORTRAIT = DATA / "portraits" / "hires_pexels_ike_louie_natividad_2709388.jpg"
SIZE = (8333, 12000)  # (width, height)
_MEASURE = (
    "import resource, subprocess, sys; "
    "rc = subprocess.run([sys.argv[1], sys.argv[2], sys.argv[3], '-o', sys.argv[4]]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", default="smooth,mask,beautify")
    args = parser.parse_args()
    if not PORTRAIT.is_file():
        sys.exit(f"{PORTRAIT} not found (set MEIYAN_DATA)")
    import cv2

    exe = Path(sys.executable).with_name("meiyan")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.jpg"
        img = cv2.imread(str(PORTRAIT))
        cv2.imwrite(str(src), cv2.resize(img, SIZE, interpolation=cv2.INTER_CUBIC))
        del img
        megapixels = SIZE[0] * SIZE[1] / 1e6
        print(
            f"photo {SIZE[0]}x{SIZE[1]} ({megapixels:.1f} MP, "
            f"{SIZE[0] * SIZE[1] * 3 / 2**20:.0f} MB decoded)\n"
        )
        print("| command | peak resident memory | wall |")
        print("|---|---:|---:|")
        for command in args.commands.split(","):
            out = Path(tmp) / f"out_{command}"
            start = time.perf_counter()
            # A fresh parent per command, so that its children's peak is this command's.
            proc = subprocess.run(
                [sys.executable, "-c", _MEASURE, str(exe), command, str(src), str(out)],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            lines = proc.stdout.strip().splitlines()
            if proc.returncode != 0 or not lines:
                print(f"| meiyan {command} | failed: {proc.stderr.strip()[-200:]} | |")
                continue
            print(f"| meiyan {command} | {int(lines[-1]) / 1024:.0f} MB | {wall:.1f} s |")


if __name__ == "__main__":
    main()
