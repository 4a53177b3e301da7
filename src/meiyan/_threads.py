"""One shared pool of worker threads for work that runs beside the caller's.

OpenCV and NumPy release the GIL in their kernels, so on a multi-core machine independent
pieces of an image (row bands, octaves, a layer) run at the same time in threads. Rule: a task
in this pool must never wait on another task of this pool (only the caller waits), so the pool
cannot deadlock, whatever its size.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor


@functools.cache
def pool() -> ThreadPoolExecutor:
    """The shared pool, one thread per CPU (at least two), created on first use and kept."""
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="meiyan")
