"""Image files in and out: decoding, metadata, colour, atomic writing, and input/output paths."""

from meiyan.io.atomic import write_file
from meiyan.io.image import (
    DEFAULT_MAX_PIXELS,
    ImageWarning,
    LoadedImage,
    encode_image,
    from_float,
    read_bytes,
    read_image,
    to_float,
    write_image,
)
from meiyan.io.paths import check_input, collect_inputs, output_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageWarning",
    "LoadedImage",
    "check_input",
    "collect_inputs",
    "encode_image",
    "from_float",
    "output_path",
    "read_bytes",
    "read_image",
    "to_float",
    "write_file",
    "write_image",
]
