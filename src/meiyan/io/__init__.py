"""Image files in and out: decoding, metadata, atomic writing, and input/output paths."""

from meiyan.io.image import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    from_float,
    read_image,
    to_float,
    write_image,
)
from meiyan.io.paths import collect_inputs, output_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "LoadedImage",
    "collect_inputs",
    "from_float",
    "output_path",
    "read_image",
    "to_float",
    "write_image",
]
