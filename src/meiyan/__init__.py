"""meiyan (美颜): AI portrait beautification.

The small public API: :func:`smooth` and :func:`beautify` take an RGB image as a NumPy array
(``uint8``, or ``float32`` in [0, 1]) and return one of the same shape and dtype.
"""

from importlib.metadata import PackageNotFoundError, version

from meiyan import makeup
from meiyan.retouch.beautify import BeautifySettings, beautify
from meiyan.retouch.smooth import smooth
from meiyan.skin import skin_mask

try:
    __version__ = version("meiyan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["BeautifySettings", "__version__", "beautify", "makeup", "skin_mask", "smooth"]
