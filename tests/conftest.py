"""Shared fixtures: small synthetic images, the shipped sample, and the optional real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"


def data_dir() -> Path:
    """The real data folder: $MEIYAN_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def real_data() -> Path:
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (../shared/data or $MEIYAN_DATA)")
    return path


@pytest.fixture
def sample_rgb() -> np.ndarray:
    """The project's public-domain sample portrait as RGB uint8."""
    from PIL import Image

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture
def skin_patch() -> np.ndarray:
    """A 64x64 skin-toned uint8 patch with mild noise (seeded)."""
    rng = np.random.default_rng(0)
    base = np.array([224, 172, 140], np.float32)
    return np.clip(base + rng.normal(0, 6, (64, 64, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """The sample portrait, shared read-only by the tests of a session."""
    from PIL import Image

    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB"))
    rgb.flags.writeable = False
    return rgb


@pytest.fixture(scope="session")
def face(portrait: np.ndarray):
    """The one face of the sample portrait."""
    from meiyan.face import analyze

    faces = analyze(portrait)
    assert len(faces) == 1
    return faces[0]
