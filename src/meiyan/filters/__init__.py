"""Edge-preserving filters and high-pass detail reduction on float32 RGB images in [0, 1]."""

from meiyan.filters.bilateral import bilateral
from meiyan.filters.guided import guided
from meiyan.filters.local_mean import local_mean
from meiyan.filters.smart_blur import smart_blur
from meiyan.filters.surface_blur import surface_blur
from meiyan.filters.wls import wls

__all__ = ["bilateral", "guided", "local_mean", "smart_blur", "surface_blur", "wls"]
