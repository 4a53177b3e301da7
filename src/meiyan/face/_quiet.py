"""Loading MediaPipe graphs without their C++ log lines on the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

T = TypeVar("T")

# The project's public-domain sample portrait: a real face, so a graph's first frame runs every
# calculator (a blank frame stops at the detector and leaves the landmark stage's warning for
# the user's first photo).
_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "astronaut.jpg"


@cache
def _first_frame() -> np.ndarray:
    """The sample portrait at 256 px, RGB uint8."""
    with Image.open(_SAMPLE) as im:
        im.thumbnail((256, 256))
        return np.asarray(im.convert("RGB"))


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ code writes there, not to ``sys.stderr``)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def load_graph(make: Callable[[], T]) -> T:
    """``make()`` a MediaPipe solution and run it once on the sample portrait, stderr silenced.

    TFLite and absl print several INFO/WARNING lines when a graph is built and on its first
    frame with a face; they say nothing a user can act on, so they are swallowed here, once per
    graph.
    """
    with _stderr_to_devnull():
        graph = make()
        graph.process(_first_frame())
    return graph
