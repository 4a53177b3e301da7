"""meiyan (美颜): AI portrait beautification.

The small public API: :func:`analyze` finds faces once; :func:`beautify`, :func:`smooth`,
:func:`skin_mask` and :func:`makeup` take an RGB image as a NumPy array (``uint8``, or
``float32`` in [0, 1]), and the faces when the caller has them, and return an image of the same
shape and dtype (a float32 mask for :func:`skin_mask`). Everything is imported on first use, so
``import meiyan`` is quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> module that defines it, imported when the name is first used.
_LAZY = {
    "analyze": "meiyan.face",
    "BeautifySettings": "meiyan.retouch.beautify",
    "beautify": "meiyan.retouch.beautify",
    "smooth": "meiyan.retouch.smooth",
    "skin_mask": "meiyan.skin",
    "keep_freed_memory": "meiyan.memory",
}

if TYPE_CHECKING:
    from meiyan import makeup
    from meiyan.face import analyze
    from meiyan.memory import keep_freed_memory
    from meiyan.retouch.beautify import BeautifySettings, beautify
    from meiyan.retouch.smooth import smooth
    from meiyan.skin import skin_mask


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meiyan")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata is slow to import: read on first use
        globals()[name] = _version()
        return globals()[name]
    if name == "makeup":  # the package, callable as the function
        return importlib.import_module("meiyan.makeup")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'meiyan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "makeup", "__version__"])


__all__ = [
    "BeautifySettings",
    "__version__",
    "analyze",
    "beautify",
    "keep_freed_memory",
    "makeup",
    "skin_mask",
    "smooth",
]
