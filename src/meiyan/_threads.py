"""One shared pool of worker threads for work that runs beside the caller's.

OpenCV and NumPy release the GIL in their kernels, so on a multi-core machine independent
pieces of an image (row bands, octaves, a layer) run at the same time in threads. Rule: a task
in this pool must never wait on another task of this pool (only the caller waits), so the pool
cannot deadlock, whatever its size. ``MEIYAN_THREADS`` sets the number of threads (a batch's
worker processes set it to 1); the default is one per CPU.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def thread_count() -> int:
    """Threads meiyan uses: ``MEIYAN_THREADS`` when set (at least 1), else the CPU count."""
    value = os.environ.get("MEIYAN_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"MEIYAN_THREADS must be a whole number, got {value!r}") from None
    return max(1, os.cpu_count() or 1)


@functools.cache
def pool() -> ThreadPoolExecutor:
    """The shared pool of :func:`thread_count` threads, created on first use and kept."""
    return ThreadPoolExecutor(max_workers=thread_count(), thread_name_prefix="meiyan")


def shared(factory: Callable[[], T]) -> Callable[[], T]:
    """Decorator: ``factory``'s one process-wide result, made on the first call, once even when
    threads call at the same time (models and graphs that every job shares)."""
    lock = threading.Lock()
    made: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return get
