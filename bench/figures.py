"""The README pictures, made from the project's public-domain sample portrait.

    .venv/bin/python bench/figures.py [--out docs]

``skin_masks_astronaut.jpg``: the photo, then the skin each method finds (mask >= 0.5 tinted,
the rest dimmed). ``beautify_astronaut.jpg``: the face before and after ``meiyan.beautify``
with the ``natural`` and ``strong`` presets, at twice the size so the skin can be seen.
``beautify_zoom_astronaut.jpg``: the same three on the left cheek and nose, four times the size
with nearest-neighbour pixels, so that the smoothing and the skin texture it keeps can be seen.
``beautify_mask_astronaut.jpg``: the skin that ``beautify`` retouches, with the landmark mask
it used before (``skin="classic"``) and with ``auto`` (the U-Net), then the ``strong`` result:
from the hairline to the neck and ears, the fringe left alone, no edge on the forehead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import meiyan
from meiyan.io.image import read_image
from meiyan.retouch.beautify import retouch
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


def skin_figure(rgb: np.ndarray) -> np.ndarray:
    panels = [panel(rgb, None, "photo")]
    panels += [panel(rgb, skin_mask(rgb, name), title) for name, title in METHODS]
    grid = np.concatenate(panels, axis=1)
    return cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), interpolation=cv2.INTER_AREA)


def beautified(rgb: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """The photo, then ``beautify`` with the ``natural`` and ``strong`` presets, with titles."""
    return [
        (rgb, "photo"),
        (meiyan.beautify(rgb), "beautify (natural)"),
        (meiyan.beautify(rgb, meiyan.BeautifySettings.preset("strong")), "beautify (strong)"),
    ]


def beautify_figure(versions: list[tuple[np.ndarray, str]]) -> np.ndarray:
    face = (slice(40, 240), slice(140, 320))  # the sample's face
    panels = []
    for img, title in versions:
        big = cv2.resize(img[face], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        panels.append(panel(big, None, title))
    return np.concatenate(panels, axis=1)


def mask_figure(rgb: np.ndarray, strong: np.ndarray) -> np.ndarray:
    face = (slice(20, 260), slice(120, 340))
    panels = [panel(rgb[face], None, "photo")]
    for skin, title in (("classic", "landmarks (before)"), ("auto", "U-Net (now)")):
        panels.append(panel(rgb[face], retouch(rgb, skin=skin).skin_mask()[face], title))
    panels.append(panel(strong[face], None, "strong"))
    grid = np.concatenate(panels, axis=1)
    return cv2.resize(grid, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)


def zoom_figure(versions: list[tuple[np.ndarray, str]]) -> np.ndarray:
    cheek = (slice(100, 176), slice(172, 238))  # the sample's left cheek, nose and eye corner
    panels = []
    for img, title in versions:
        big = cv2.resize(img[cheek], None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        big = np.pad(big, ((34, 0), (0, 0), (0, 0)))  # room for the title above the pixels
        panels.append(panel(big, None, title.removeprefix("beautify (").removesuffix(")")))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    rgb = read_image(SAMPLE).pixels
    args.out.mkdir(parents=True, exist_ok=True)
    versions = beautified(rgb)
    for name, fig in [
        ("skin_masks_astronaut.jpg", skin_figure(rgb)),
        ("beautify_astronaut.jpg", beautify_figure(versions)),
        ("beautify_zoom_astronaut.jpg", zoom_figure(versions)),
        ("beautify_mask_astronaut.jpg", mask_figure(rgb, versions[2][0])),
    ]:
        cv2.imwrite(str(args.out / name), fig[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
