"""Edge-preserving filters and high-pass detail reduction on float32 RGB images in [0, 1]."""

from meiyan.filters.guided import guided

__all__ = ["guided"]
