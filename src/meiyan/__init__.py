"""meiyan (美颜): AI portrait beautification."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meiyan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
