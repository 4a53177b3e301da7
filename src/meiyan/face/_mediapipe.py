"""Importing one MediaPipe solution without the whole of MediaPipe.

``import mediapipe`` runs the package's ``__init__``, which imports every solution, the drawing
utilities and, through them, matplotlib: about a second of start-up for a command that needs
two graphs. :func:`solution` imports only the module asked for. Until then the ``mediapipe``
and ``mediapipe.python.solutions`` packages are registered without running their
``__init__``; the first access to anything else on them runs it, so code that uses
``mediapipe`` as usual afterwards sees the complete package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

_PACKAGES = ("mediapipe", "mediapipe.python.solutions")
_lock = threading.Lock()


def _deferred(name: str) -> None:
    """Register package ``name`` with its ``__init__`` deferred to the first unknown attribute."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    module = importlib.util.module_from_spec(spec)
    state = {"done": False}

    def complete(attr: str) -> object:
        with _lock:
            if not state["done"]:
                state["done"] = True
                del module.__dict__["__getattr__"]
                spec.loader.exec_module(module)
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__getattr__ = complete  # PEP 562: called only for attributes not already set
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def solution(name: str) -> ModuleType:
    """The module ``mediapipe.python.solutions.<name>``, imported on its own."""
    with _lock:
        for package in _PACKAGES:
            if package not in sys.modules:
                _deferred(package)
    return importlib.import_module(f"mediapipe.python.solutions.{name}")
