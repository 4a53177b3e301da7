"""Makeup: virtual looks and reference makeup transfer with shade and partial control.

``makeup(image, reference=..., regions=..., shade=...)`` copies the makeup of a reference photo
(pose and expression may differ) region by region; ``makeup(image, look="natural")`` paints a
named look. Both work on every face of the photo and leave everything outside the faces as is.

The package itself is callable, ``meiyan.makeup(image, ...)`` being ``makeup(image, ...)``, so
that the top-level ``meiyan.makeup`` can be this package (its modules stay importable) and the
function at once.
"""

import sys
import types

from meiyan.errors import NoFaceError
from meiyan.makeup.api import makeup
from meiyan.makeup.layers import (
    Blush,
    BrowTint,
    Eyeliner,
    Eyeshadow,
    Foundation,
    Layer,
    Lipstick,
)
from meiyan.makeup.looks import Look, get_look, look_names
from meiyan.makeup.regions import REGION_NAMES, makeup_masks
from meiyan.makeup.transfer import Reference


class _CallableModule(types.ModuleType):
    """This package's module type: calling the package calls :func:`makeup`."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        return makeup(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "REGION_NAMES",
    "Blush",
    "BrowTint",
    "Eyeliner",
    "Eyeshadow",
    "Foundation",
    "Layer",
    "Lipstick",
    "Look",
    "NoFaceError",
    "Reference",
    "get_look",
    "look_names",
    "makeup",
    "makeup_masks",
]
