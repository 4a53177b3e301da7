"""Loading MediaPipe graphs without their C++ log lines on the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

T = TypeVar("T")


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
    """``make()`` a MediaPipe solution and run it once on a blank frame, with stderr silenced.

    TFLite and absl print several INFO/WARNING lines when a graph is built and on its first
    frame; they say nothing a user can act on, so they are swallowed here, once per graph.
    """
    with _stderr_to_devnull():
        graph = make()
        graph.process(np.zeros((64, 64, 3), np.uint8))
    return graph
