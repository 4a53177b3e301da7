"""beautify retouches the forehead up to the hairline: no edge where the face mesh ends.

The face mesh stops at mid-forehead (landmark 10). On FASSEG's frontal test faces, enlarged to
a high-resolution portrait, the retouch of the ``strong`` preset just above that line (on
labelled skin) must be about as strong as just below it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from meiyan import beautify
from meiyan.face import analyze
from meiyan.retouch.beautify import BeautifySettings
from meiyan.train.datasets import read_gray, read_rgb

MESH_TOP = 10  # MediaPipe face-mesh landmark at the top of the forehead's midline
BAND = (0.03, 0.09)  # rows this far (face sizes) above and below the mesh top are compared
HALF_WIDTH = 0.12  # ... over this half-width around the midline
ENLARGE = 3  # FASSEG photos (512 px high) enlarged to a 1536 px portrait


def frontal_photos(root: Path) -> list[Path]:
    """FASSEG test photos with pan and tilt 0."""
    return sorted((root / "fasseg-multipose" / "test" / "images").glob("*p0p0.jpg"))


def band_change(
    before: np.ndarray, after: np.ndarray, skin: np.ndarray, rows: slice, cols: slice
) -> float | None:
    """Mean absolute luminance change over the labelled skin of a band (None: too little)."""
    y0 = cv2.cvtColor(before[rows, cols], cv2.COLOR_RGB2GRAY).astype(np.float32)
    y1 = cv2.cvtColor(after[rows, cols], cv2.COLOR_RGB2GRAY).astype(np.float32)
    here = skin[rows, cols]
    if here.mean() < 0.6:
        return None
    return float(np.abs(y1 - y0)[here].mean())


def test_forehead_retouched_above_the_mesh_as_below(real_data: Path) -> None:
    photos = frontal_photos(real_data)
    if not photos:
        pytest.skip(f"no frontal FASSEG test photos under {real_data}")
    settings = BeautifySettings.preset("strong")
    ratios = []
    for path in photos:
        rgb = read_rgb(path)
        rgb = cv2.resize(rgb, None, fx=ENLARGE, fy=ENLARGE, interpolation=cv2.INTER_CUBIC)
        label = read_gray(path.parent.parent / "labels" / f"{path.stem}.png")
        skin = cv2.resize(label, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST) == 1
        faces = analyze(rgb)
        if len(faces) != 1:
            continue
        face = faces[0]
        x, y = face.landmarks[MESH_TOP]
        s = face.size
        cols = slice(round(x - HALF_WIDTH * s), round(x + HALF_WIDTH * s))
        above = slice(round(y - BAND[1] * s), round(y - BAND[0] * s))
        below = slice(round(y + BAND[0] * s), round(y + BAND[1] * s))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = beautify(rgb, settings, faces=faces)
        up = band_change(rgb, out, skin, above, cols)
        down = band_change(rgb, out, skin, below, cols)
        if up is None or down is None or down < 0.5:
            continue  # hair over the forehead, or nothing retouched below: nothing to compare
        ratios.append(up / down)
    assert len(ratios) >= 3, f"only {len(ratios)} frontal photos with a forehead to compare"
    # Below the mesh top, even tone and whitening act fully; above it they must too (a ratio
    # near 0 is the edge the mesh-bound mask left).
    assert np.median(ratios) >= 0.75, f"retouch above / below the mesh top: {np.round(ratios, 2)}"
    assert min(ratios) >= 0.5, f"retouch above / below the mesh top: {np.round(ratios, 2)}"
