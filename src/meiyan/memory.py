"""Freed image buffers kept for reuse by glibc's malloc, in a process that works on many photos.

By default glibc hands every buffer over 128 KiB to ``mmap`` and gives it back to the system
when freed (the threshold rises only once a buffer is freed, and the heap's top is trimmed soon
after), so each photo's float copies are faulted in again page by page: a batch of 1080p photos
spent a fifth of its CPU time in the kernel zeroing pages, and ``makeup(look)`` on one 1080p
portrait 15,000 page faults (about 50 ms) per call. The command line, and with it the server,
calls :func:`keep_freed_memory` once at start. The library does not (an embedding application
owns its allocator): a program that retouches many photos may call it itself."""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_SETTINGS = (
    (_M_MMAP_THRESHOLD, 32 << 20),  # glibc's largest: buffers up to 32 MiB come from the heap
    # Free memory at the heap's top is kept up to 256 MiB, and the heap grows by 64 MiB more
    # than asked. At 100 MP (bench/memory.py) ``meiyan mask`` then peaks at 1.15 GB, 70 MB above
    # the default allocator (keeping 1 GiB, with 256 MiB steps: 1.29 GB); smooth and beautify
    # within 10 MB.
    (_M_TRIM_THRESHOLD, 256 << 20),
    (_M_TOP_PAD, 64 << 20),
)
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap, trim and top-pad thresholds (see the module's docstring); whether
    they were set. Nothing is done off Linux, without glibc's ``mallopt``, or where the user
    set any of glibc's ``MALLOC_*_`` variables (their choice stands)."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _ENV):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(option, value) == 1 for option, value in _SETTINGS)
