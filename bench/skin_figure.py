"""The README picture comparing skin masks on the project's public-domain sample.

    .venv/bin/python bench/skin_figure.py [-o docs/skin_masks_astronaut.jpg]

Panels: the photo, then the skin each method finds (mask >= 0.5 tinted, the rest dimmed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from meiyan.io.image import read_image
from meiyan.skin import skin_mask

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"
METHODS = [("color", "colour rule (YCrCb)"), ("face", "landmarks"), ("unet", "U-Net")]


def panel(rgb: np.ndarray, mask: np.ndarray | None, title: str) -> np.ndarray:
    out = rgb.astype(np.float32)
    if mask is not None:
        m = (mask >= 0.5)[..., None]
        tint = 0.55 * out + 0.45 * np.array([255, 40, 160], np.float32)
        out = np.where(m, tint, 0.35 * out)
    out = np.clip(out, 0, 255).astype(np.uint8)
    cv2.rectangle(out, (0, 0), (out.shape[1], 34), (0, 0, 0), -1)
    cv2.putText(out, title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "skin_masks_astronaut.jpg")
    args = ap.parse_args()
    rgb = read_image(SAMPLE).pixels
    panels = [panel(rgb, None, "photo")]
    panels += [panel(rgb, skin_mask(rgb, name), title) for name, title in METHODS]
    grid = np.concatenate(panels, axis=1)
    grid = cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), interpolation=cv2.INTER_AREA)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
