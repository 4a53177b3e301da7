"""Parameter checks shared by the filters: clear ``ValueError`` messages."""

from __future__ import annotations


def check_radius(radius: int, name: str = "radius") -> int:
    """Return ``radius`` as an ``int``; raise ``ValueError`` unless it is a positive integer."""
    if isinstance(radius, bool) or int(radius) != radius or radius < 1:
        raise ValueError(f"{name} must be a positive integer, got {radius!r}")
    return int(radius)


def check_positive(value: float, name: str) -> float:
    """Return ``value`` as a ``float``; raise ``ValueError`` unless it is finite and > 0."""
    v = float(value)
    if not 0.0 < v < float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v
