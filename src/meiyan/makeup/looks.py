"""Named makeup looks, defined as data in ``looks.json`` beside this module.

The file maps each look's name to a ``description`` and its ``layers``: an object whose keys are
layer kinds (``foundation``, ``blush``, ``eyeshadow``, ``eyeliner``, ``brows``, ``lipstick``) and
whose values are that layer's settings (``color`` as ``"#rrggbb"``, ``strength`` in [0, 1], and
``finish`` for lipstick). Layers are painted bottom to top in that fixed order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from meiyan.makeup.layers import LAYER_TYPES, Layer

_DATA = "looks.json"


@dataclass(frozen=True)
class Look:
    """A named set of layers, in painting order."""

    name: str
    description: str
    layers: tuple[Layer, ...]

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> Look:
        """A look from its JSON object; ``ValueError`` names what is wrong."""
        layers_data = data.get("layers", {})
        unknown = set(layers_data) - set(LAYER_TYPES)
        if unknown:
            raise ValueError(
                f"look {name!r}: unknown layer(s) {sorted(unknown)}; use {list(LAYER_TYPES)}"
            )
        layers = []
        for kind, layer_type in LAYER_TYPES.items():
            if kind in layers_data:
                try:
                    layers.append(layer_type(**layers_data[kind]))
                except TypeError as e:
                    raise ValueError(f"look {name!r}, layer {kind!r}: {e}") from e
        return cls(name=name, description=str(data.get("description", "")), layers=tuple(layers))


@cache
def _looks() -> dict[str, Look]:
    data = json.loads(files("meiyan.makeup").joinpath(_DATA).read_text(encoding="utf-8"))
    return {name: Look.from_dict(name, body) for name, body in data.items()}


def look_names() -> list[str]:
    """The names of the shipped looks."""
    return list(_looks())


def get_look(name: str) -> Look:
    """The shipped look ``name``; ``ValueError`` lists the names if there is none."""
    looks = _looks()
    if name not in looks:
        raise ValueError(f"unknown look {name!r}; choose from {list(looks)}")
    return looks[name]
