"""Loading MediaPipe graphs without their C++ log lines on the terminal."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from meiyan.errors import ModelError

_fd_lock = threading.Lock()
_fd_users = 0
_fd_saved: int | None = None


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ code writes there, not to ``sys.stderr``).

    File descriptors belong to the process: while several threads are inside (graphs built
    or primed on the shared pool beside the main thread), the first one in points fd 2 at
    /dev/null and the last one out points it back, so that none restores it under another
    or leaves it silenced."""
    global _fd_users, _fd_saved
    with _fd_lock:
        if _fd_users == 0:
            sys.stderr.flush()
            _fd_saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _fd_users += 1
    try:
        yield
    finally:
        with _fd_lock:
            _fd_users -= 1
            if _fd_users == 0 and _fd_saved is not None:
                os.dup2(_fd_saved, 2)
                os.close(_fd_saved)
                _fd_saved = None


class _QuietGraph:
    """A MediaPipe solution built on its first frame, and whose frames run with fd 2 silenced
    until one has found something (the log lines come with the first frame that reaches every
    calculator).

    Building and the first frame share one silenced stretch: a solution's constructor starts
    the graph, whose calculators open (and log) on MediaPipe's own threads, possibly after the
    constructor has returned."""

    def __init__(self, make: Callable[[], Any], what: str) -> None:
        self._make = make
        self._what = what
        self.graph: Any = None
        self._first = True
        self._lock = threading.Lock()

    def process(self, image: np.ndarray) -> Any:
        if self._first:
            with self._lock, _stderr_to_devnull():
                if self.graph is None:
                    try:
                        self.graph = self._make()
                    except RuntimeError as e:
                        raise ModelError(f"cannot load {self._what}: {e}") from e
                result = self.graph.process(image)
                self._first = not any(
                    getattr(result, name, None) is not None and len(getattr(result, name)) > 0
                    for name in ("detections", "multi_face_landmarks", "segmentation_mask")
                )
            return result
        return self.graph.process(image)

    def close(self) -> None:
        if self.graph is not None:
            self.graph.close()


def load_graph(make: Callable[[], Any], what: str) -> _QuietGraph:
    """A graph that ``make()``s a MediaPipe solution on its first frame, with stderr silenced
    from building to the first frame that finds something.

    TFLite and absl print several INFO/WARNING lines when a graph is built and on its first
    frame with a face; they say nothing a user can act on, so they are swallowed, once per
    graph. The first frame is the caller's own (no warm-up frame is run: graphs are built and
    primed lazily, on the photo that needs them). A solution that fails to build raises
    :class:`~meiyan.errors.ModelError` naming ``what``.
    """
    return _QuietGraph(make, what)
