"""One registry for every skin segmenter, with lazy construction.

A segmenter is a callable ``(image: uint8 or float32 RGB) -> float32 (H, W) mask in [0, 1]``.
The registry stores factories, so a segmenter that loads a model pays for it on first use only,
and the instance is kept for later calls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Segmenter = Callable[[np.ndarray], np.ndarray]

_factories: dict[str, Callable[[], Segmenter]] = {}
_instances: dict[str, Segmenter] = {}


def register(name: str, factory: Callable[[], Segmenter]) -> None:
    """Register ``factory`` (called once, on first use) under ``name``."""
    _factories[name] = factory
    _instances.pop(name, None)


def available() -> list[str]:
    """Names of the registered skin segmenters."""
    return sorted(_factories)


def get(name: str) -> Segmenter:
    """The segmenter registered as ``name``, constructed on first use."""
    if name not in _factories:
        raise ValueError(f"unknown skin method {name!r}; choose one of {available()}")
    if name not in _instances:
        _instances[name] = _factories[name]()
    return _instances[name]
