"""Reading and writing photos with their orientation, bit depth, alpha, ICC profile and EXIF.

Pillow reads every supported format and its metadata. For 16-bit PNG and TIFF, whose colour
samples Pillow reduces to 8 bits, the pixel data comes from OpenCV at full depth instead. EXIF
orientation (CIPA DC-008 "Exif 2.3", tag 0x0112) is applied to pixels and alpha on reading and
reset to 1 in the EXIF kept for writing. Photos tagged with another RGB colour space (Display P3,
Adobe RGB) are converted to sRGB on reading and back on writing (:mod:`meiyan.io.colour`). TIFF
is written by this module (baseline TIFF 6.0 with Adobe Deflate compression and horizontal
differencing, TIFF 6.0 section 14) so that 8- and 16-bit images keep their EXIF sub-IFDs and ICC
profile alike. HEIC/HEIF is read through the optional ``pillow-heif``. Files are written
atomically (:mod:`meiyan.io.atomic`).

Decoding is safe from several threads at once: the pixel limit is checked per call, Pillow's
own ``Image.MAX_IMAGE_PIXELS`` is left as the caller set it (it is bypassed only inside this
module's decoding, per thread), and no lock is held while decoding.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageMode, PngImagePlugin, TiffImagePlugin, UnidentifiedImageError

from meiyan.errors import ImageError, ImageTooLargeError
from meiyan.io import colour
from meiyan.io.atomic import write_file
from meiyan.io.paths import check_input

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image (width × height) ``read_image`` decodes by default: a decompression-bomb guard."""

_SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".dib": "BMP",
}
_WRITABLE = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
# Pillow's format names. Its JPEG reader also opens the multi-picture JPEG that many phones
# write, and then reports format "MPO". AVIF is Pillow's own (where built with libavif), HEIF
# comes from pillow-heif.
_PIL_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "AVIF")
_FORMATS_TEXT = "JPEG, PNG, WebP, TIFF, BMP, HEIC or AVIF"
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# What Pillow or the codecs under it raise on damaged data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, zlib.error)
_PNG_ICC_LIMIT = PngImagePlugin.MAX_TEXT_CHUNK
"""Largest ICC profile (uncompressed) that Pillow's PNG reader accepts in an iCCP chunk."""
_PNG_LEVEL = 3
"""zlib level of 8-bit PNGs. Photos gain little from more: a 1080p makeup result took 745 ms and
2.51 MB at Pillow's default 6, 304 ms and 2.69 MB at 3, 221 ms and 2.86 MB at 1."""

_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
# IFD0 tags that describe how a TIFF stores its pixels (TIFF 6.0 baseline and extensions), plus
# the ICC profile (kept separately), XMP and Photoshop resources. They are dropped from EXIF that
# comes from a TIFF, and replaced by the writer's own when writing TIFF.
_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284,
     290, 291, 292, 293, 317, 320, 321, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347,
     512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 700, 34377, 34675}
)  # fmt: skip
_TIFF_STRIP_BYTES = 1 << 18


class ImageWarning(UserWarning):
    """Something about an image that was read or written; the message starts with its name."""


@dataclass
class LoadedImage:
    """A decoded image, upright, in sRGB, with the metadata needed to write a result like it."""

    pixels: np.ndarray
    """``(H, W, 3)`` RGB, uint8 or uint16, EXIF orientation applied, in sRGB (see ``stored``)."""
    alpha: np.ndarray | None
    """``(H, W)`` alpha, same dtype as ``pixels``, values as stored, oriented like ``pixels``."""
    path: Path | None
    """The file read; ``None`` for :func:`read_bytes`."""
    format: str
    """One of "JPEG", "PNG", "WEBP", "TIFF", "BMP", "HEIF", "AVIF" (a phone's multi-picture
    JPEG is "JPEG")."""
    icc_profile: bytes | None
    exif: bytes | None
    """EXIF as in a JPEG APP1 segment (``b"Exif\\0\\0"`` + TIFF structure), Orientation reset
    to 1; ``None`` when the file has none."""
    grayscale: bool
    """The source had one (luminance) colour channel; ``pixels`` then holds three equal ones."""
    stored: np.ndarray | None = None
    """The pixels in the colour space of ``icc_profile`` when ``pixels`` were converted from it
    to sRGB; ``None`` when no conversion was needed. Writing like this image converts back,
    and pixels left unchanged get their stored values exactly."""


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 array (any shape) -> float32 in [0, 1]."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
    return pixels.astype(np.float32) * np.float32(1.0 / np.iinfo(pixels.dtype).max)


def from_float(x: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """float [0, 1] array (any shape) -> uint8 or uint16, rounded to nearest and clipped."""
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise TypeError(f"dtype must be uint8 or uint16, got {dtype}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a float array, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    top = np.float32(np.iinfo(dtype).max)
    return np.clip(x.astype(np.float32, copy=False) * top + np.float32(0.5), 0, top).astype(dtype)


# ----------------------------------------------------------------------------------- reading


def read_image(
    path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, to_srgb: bool = True
) -> LoadedImage:
    """Decode a JPEG, PNG, WebP, TIFF, BMP, HEIC or AVIF file, upright, at its own bit depth.

    Images with more than ``max_pixels`` pixels (read from the header, before decoding) are
    refused; ``None`` disables the check. Pixels in another RGB colour space are converted to
    sRGB unless ``to_srgb`` is false. Only a regular file is opened (a FIFO or device is refused
    from its ``stat``, so nothing can block). Every failure raises ``ImageError`` with a one-line
    message that starts with the file name; notes (an animation of which only the first frame
    is read) are ``ImageWarning`` s that start with it too.
    """
    path = Path(path)
    check_input(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced since it was checked
            raise ImageError(f"{path}: not a regular file")
        if st.st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        return _decode(f, str(path), path, max_pixels, to_srgb)


def read_bytes(
    data: bytes,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    name: str = "<bytes>",
    to_srgb: bool = True,
) -> LoadedImage:
    """:func:`read_image` for an encoded image held in memory (an upload, say); ``name``
    stands for the file name in messages. Pair with :func:`encode_image` for bytes out."""
    if not data:
        raise ImageError(f"{name}: empty data (0 bytes)")
    return _decode(BytesIO(bytes(data)), name, None, max_pixels, to_srgb)


def _decode(
    f: BinaryIO, name: str, path: Path | None, max_pixels: int | None, to_srgb: bool
) -> LoadedImage:
    """Decode the open image file ``f``; ``name`` starts every message."""
    head = f.read(32)
    f.seek(0)
    formats = _PIL_FORMATS
    if _sniff(head) == "HEIF":
        _register_heif(name)
        formats = ("HEIF",)
    notes: list[str] = []
    with _quiet_pillow():
        try:
            im = Image.open(f, formats=formats)
        except UnidentifiedImageError:
            kind = _sniff(head)
            if kind is None:
                raise ImageError(f"{name}: not a {_FORMATS_TEXT} image") from None
            raise ImageError(f"{name}: truncated, corrupt or unsupported {kind} image") from None
        except _DECODE_ERRORS as e:
            raise ImageError(f"{name}: truncated or corrupt image ({_one_line(e)})") from e
        with im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{name}: {width}×{height} image ({width * height:,} pixels) is larger than "
                    f"the limit of {max_pixels:,} pixels"
                )
            fmt = "JPEG" if im.format == "MPO" else str(im.format)
            frames = getattr(im, "n_frames", 1)
            if fmt != "JPEG" and isinstance(frames, int) and frames > 1:
                notes.append(
                    f"{name}: {frames} frames (animated or multi-page); only the first is processed"
                )
            try:
                im.load()
            except _DECODE_ERRORS as e:
                raise ImageError(f"{name}: truncated or corrupt image ({_one_line(e)})") from e
            icc = im.info.get("icc_profile") or None
            orientation, exif = _read_exif(im, fmt)
            grayscale = ImageMode.getmode(im.mode).basemode == "L"
            if _is_16bit(im, f, fmt):
                if fmt == "TIFF":
                    _check_16bit_tiff(name, _tiff_tags(im))
                f.seek(0)
                data = f.read()
                colour_px, alpha = _decode_16bit(
                    name, _png_pixel_chunks(data) if fmt == "PNG" else data, grayscale
                )
            else:
                colour_px, alpha, grayscale, drop_icc = _pillow_pixels(name, im)
                icc = None if drop_icc else icc
    pixels = _orient(colour_px, orientation)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    pixels = np.require(pixels, requirements="CWO")  # a writable array of its own
    if alpha is not None:
        alpha = np.require(_orient(alpha, orientation), requirements="CWO")
    stored = None
    if to_srgb and icc is not None and not grayscale:
        try:
            profile = colour.parse_profile(icc)
        except colour.ProfileError as e:
            notes.append(f"{name}: colour profile not converted to sRGB ({e})")
        else:
            if not profile.is_srgb:
                stored, pixels = pixels, colour.to_srgb(pixels, profile)
    for note in notes:
        warnings.warn(note, ImageWarning, stacklevel=3)
    return LoadedImage(pixels, alpha, path, fmt, icc, exif, grayscale, stored)


# Pillow refuses images above its global Image.MAX_IMAGE_PIXELS from inside Image.open and
# several plugins. ``max_pixels`` replaces that limit for this module's own decoding only: the
# check is skipped in the thread that is decoding here, and runs unchanged everywhere else.
_local = threading.local()


def _install_bomb_check_bypass() -> None:
    original = getattr(Image, "_decompression_bomb_check", None)
    if original is None or getattr(original, "meiyan_bypass", False):
        return

    def check(*args: object, **kwargs: object) -> None:
        if not getattr(_local, "decoding", False):
            original(*args, **kwargs)

    check.meiyan_bypass = True  # type: ignore[attr-defined]
    Image._decompression_bomb_check = check


_install_bomb_check_bypass()

# Pillow's own warnings (corrupt EXIF, odd chunks) are ignored while this module decodes. One
# filter is shared by every decoding thread, added by the first and removed by the last, so
# the caller's filters are never saved and restored out of order.
_QUIET_FILTER = ("ignore", None, Warning, re.compile(r"PIL(\.|$)"), 0)
_quiet_lock = threading.Lock()
_quiet_users = 0


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Decode here: Pillow's pixel limit off in this thread, Pillow's warnings ignored."""
    global _quiet_users
    with _quiet_lock:
        if _quiet_users == 0:
            warnings.filters.insert(0, _QUIET_FILTER)  # type: ignore[arg-type]
            warnings._filters_mutated()  # type: ignore[attr-defined]
        _quiet_users += 1
    _local.decoding = True
    try:
        yield
    finally:
        _local.decoding = False
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0:
                with contextlib.suppress(ValueError):
                    warnings.filters.remove(_QUIET_FILTER)  # type: ignore[arg-type]
                warnings._filters_mutated()  # type: ignore[attr-defined]


_heif_lock = threading.Lock()


def _register_heif(name: str) -> None:
    """Make Pillow read HEIC/HEIF through the optional pillow-heif (once per process)."""
    try:
        import pillow_heif
    except ImportError:
        raise ImageError(
            f"{name}: reading HEIC/HEIF needs the optional package pillow-heif "
            "(pip install 'meiyan[heif]')"
        ) from None
    with _heif_lock:
        if "HEIF" not in Image.OPEN:
            pillow_heif.register_heif_opener()


def _sniff(head: bytes) -> str | None:
    """The format whose signature ``head`` (the first bytes of a file) starts with."""
    signatures = {
        b"\xff\xd8\xff": "JPEG",
        b"\x89PNG\r\n\x1a\n": "PNG",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
        b"BM": "BMP",
    }
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":  # ISO base media file (ISO/IEC 14496-12): major + compatible brands
        brands = {head[i : i + 4] for i in range(8, min(len(head), 32), 4)} - {head[12:16]}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
    return next((kind for sig, kind in signatures.items() if head.startswith(sig)), None)


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (its class name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def _read_exif(im: Image.Image, fmt: str) -> tuple[int, bytes | None]:
    """The EXIF orientation (1-8) and the EXIF bytes with orientation reset to 1.

    Unreadable EXIF is dropped rather than failing an otherwise good image.
    """
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION, 1)
    except (*_DECODE_ERRORS, TypeError, KeyError):
        return 1, None
    orientation = orientation if orientation in range(1, 9) else 1
    try:
        if fmt == "TIFF":  # Pillow returns the whole first IFD: keep only the descriptive tags
            for tag in _TIFF_LAYOUT_TAGS.intersection(exif):
                del exif[tag]
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        return orientation, exif.tobytes() if len(exif) else None
    except (*_DECODE_ERRORS, TypeError, KeyError):
        return orientation, None


def _is_16bit(im: Image.Image, f: BinaryIO, fmt: str) -> bool:
    """Whether a PNG (IHDR bit depth, PNG spec 11.2.2) or TIFF (BitsPerSample) has 16 bits."""
    if fmt == "PNG":
        f.seek(24)
        return f.read(1) == b"\x10"
    if fmt == "TIFF":
        bits = _tiff_tags(im).get(258, 1)
        return 16 in (bits if isinstance(bits, tuple) else (bits,))
    return False


def _tiff_tags(im: Image.Image) -> Mapping[int, object]:
    """The first IFD's tags of a TIFF (none for other formats)."""
    return im.tag_v2 if isinstance(im, TiffImagePlugin.TiffImageFile) else {}


def _check_16bit_tiff(name: str, tags: Mapping[int, object]) -> None:
    """Refuse the 16-bit TIFF layouts that OpenCV would misread rather than decode wrongly."""
    photometric, planar = tags.get(262), tags.get(284, 1)
    sample_format = tags.get(339, 1)
    if planar == 2:
        problem = "separate colour planes"
    elif photometric not in (1, 2):  # BlackIsZero, RGB
        problem = f"PhotometricInterpretation {photometric}"
    elif set(sample_format if isinstance(sample_format, tuple) else (sample_format,)) != {1}:
        problem = "signed or floating-point samples"
    else:
        return
    raise ImageError(f"{name}: 16-bit TIFF with {problem} is not supported")


def _png_pixel_chunks(png: bytes) -> bytes:
    """``png`` with only the chunks that define pixels (PNG spec 5.6): IHDR, PLTE, tRNS, IDAT
    and IEND. OpenCV then decodes it without libpng warnings about metadata on stderr."""
    keep = [png[:8]]
    pos = 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        end = pos + 12 + length
        if png[pos + 4 : pos + 8] in (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"):
            keep.append(png[pos:end])
        pos = end
    return b"".join(keep)


def _decode_16bit(name: str, data: bytes, grayscale: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Full-depth colour (``(H, W)`` when grayscale) and alpha of a 16-bit PNG or TIFF."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim not in (2, 3):
        raise ImageError(f"{name}: unsupported 16-bit image layout")
    if arr.ndim == 2:
        return arr, None
    alpha = arr[:, :, -1] if arr.shape[2] in (2, 4) else None
    if grayscale or arr.shape[2] <= 2:
        return arr[:, :, 0], alpha
    return arr[:, :, 2::-1], alpha


def _pillow_pixels(name: str, im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool, bool]:
    """Colour (``(H, W)`` when grayscale), alpha, grayscale flag and whether the ICC profile
    no longer applies (CMYK converted to RGB) of an 8-bit image decoded by Pillow."""
    mode = im.mode
    transparent = "transparency" in im.info
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if transparent or mode == "PA" else "RGB")
    elif mode in ("1", "L"):
        im = im.convert("LA" if transparent else "L")
    elif mode == "RGB" and transparent:
        im = im.convert("RGBA")
    elif mode in ("RGBX", "YCbCr", "CMYK"):
        im = im.convert("RGB")
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"{name}: unsupported pixel format (Pillow mode {mode})")
    arr = np.asarray(im)
    if im.mode == "L":
        return arr, None, True, False
    if im.mode == "LA":
        return arr[:, :, 0], arr[:, :, 1], True, False
    alpha = arr[:, :, 3] if im.mode == "RGBA" else None
    return arr[:, :, :3], alpha, False, mode == "CMYK"


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """View of ``a`` (rows, columns, ...) as displayed under EXIF orientation 1-8."""
    if orientation in (2, 3):
        a = a[:, ::-1]
    if orientation in (3, 4):
        a = a[::-1]
    if orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = a.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = a.swapaxes(0, 1)[::-1]
    return a


# ----------------------------------------------------------------------------------- writing


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    like: LoadedImage | None = None,
    alpha: np.ndarray | None = None,
    overwrite: bool = False,
    quality: int | None = None,
) -> Path:
    """Write ``(H, W, 3)`` uint8 or uint16 RGB ``pixels``; the format follows the suffix.

    ``like`` (the image the result was made from) supplies the ICC profile (pixels are
    converted back from sRGB to it), the EXIF, the grayscale flag (a single channel is written)
    and the alpha channel (when its size matches). An explicit ``alpha`` (``(H, W)``, uint8 or
    uint16) wins. Alpha is written unchanged to PNG, WebP and TIFF and dropped for JPEG and BMP.
    16 bits are kept in PNG and TIFF and rounded to 8 bits elsewhere. ``quality`` (1-100,
    default 95) applies to JPEG and WebP.

    The file is written atomically by :func:`meiyan.io.atomic.write_file`: an existing file is
    replaced only with ``overwrite=True`` (the check and the write are one step), and never
    when it is ``like.path``. Raises ``ImageError`` naming the file; ``TypeError``/``ValueError``
    for bad arguments.
    """
    path = Path(path)
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{path}: unsupported output format {path.suffix!r} "
            "(use .jpg, .png, .webp, .tif or .bmp)"
        )
    alpha, quality = _check_arguments(pixels, alpha, like, quality)
    if like is not None and like.path is not None and _same_file(path, like.path):
        raise ImageError(f"{path}: is the input image; refusing to overwrite an input")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder")
    if path.exists() and not overwrite:  # early, to save encoding; write_file decides
        raise ImageError(f"{path}: already exists (use --overwrite to replace it)")
    return write_file(
        path, _encode(str(path), fmt, pixels, alpha, like, quality), overwrite=overwrite
    )


def encode_image(
    pixels: np.ndarray,
    *,
    like: LoadedImage | None = None,
    format: str | None = None,
    alpha: np.ndarray | None = None,
    quality: int | None = None,
) -> bytes:
    """The encoded file that :func:`write_image` would write, as bytes (for a server, say).

    ``format`` is a format or suffix name ("jpeg", "png", ".webp", "tif", "bmp"); by default
    ``like``'s own format (JPEG where that cannot be written, such as HEIC), else PNG.
    Metadata, alpha and colour profile are kept as by :func:`write_image`.
    """
    if format is None:
        fmt = "PNG" if like is None else like.format if like.format in _WRITABLE else "JPEG"
    else:
        key = format.lower().lstrip(".")
        fmt = _SUFFIX_FORMATS.get(f".{key}") or {"tiff": "TIFF", "jpeg": "JPEG"}.get(key, "")
        if fmt not in _WRITABLE:
            raise ValueError(f"format must be one of jpeg, png, webp, tiff, bmp; got {format!r}")
    alpha, quality = _check_arguments(pixels, alpha, like, quality)
    name = f"<{fmt} data>" if like is None or like.path is None else str(like.path)
    return _encode(name, fmt, pixels, alpha, like, quality)


def _check_arguments(
    pixels: np.ndarray, alpha: np.ndarray | None, like: LoadedImage | None, quality: int | None
) -> tuple[np.ndarray | None, int]:
    """The alpha to write and the quality, after checking the writer's arguments."""
    _check_pixels(pixels)
    quality = 95 if quality is None else quality
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1-100, got {quality}")
    if alpha is None and like is not None and like.alpha is not None:
        alpha = like.alpha if like.alpha.shape == pixels.shape[:2] else None
    if alpha is not None and (
        alpha.shape != pixels.shape[:2] or alpha.dtype not in (np.uint8, np.uint16)
    ):
        raise ValueError(f"alpha must be uint8/uint16 of shape {pixels.shape[:2]}")
    return alpha, quality


def _check_pixels(pixels: np.ndarray) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``pixels`` is non-empty (H, W, 3) uint8/16."""
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a NumPy array, got {type(pixels).__name__}")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"pixels must have shape (H, W, 3), got {pixels.shape}")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through links or another spelling)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _to_depth(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` converted between uint8 and uint16 full scale (``x * 257`` / rounded ``x / 257``)."""
    if a.dtype == dtype:
        return a
    if dtype == np.uint16:
        return a.astype(np.uint16) * np.uint16(257)
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma ``(299 R + 587 G + 114 B) / 1000``, rounded; exact on gray pixels.

    Worked out in bands of rows, so that a 100-megapixel frame needs no 32-bit copy of itself.
    """
    weights = np.array([299, 587, 114], np.uint32)
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for y in range(0, rgb.shape[0], 256):
        band = rgb[y : y + 256]
        out[y : y + 256] = (band.astype(np.uint32) @ weights + 500) // 1000
    return out


def _icc_fits(icc: bytes | None, luminance: bool) -> bytes | None:
    """``icc`` if its colour space (ICC.1 header bytes 16-19) matches the written channels."""
    if icc is None or len(icc) < 128:
        return None
    return icc if icc[16:20] == (b"GRAY" if luminance else b"RGB ") else None


def _encode(
    name: str,
    fmt: str,
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    like: LoadedImage | None,
    quality: int,
) -> bytes:
    """The encoded file; ``name`` (the target) starts every message."""
    deep = pixels.dtype == np.uint16 and fmt in ("PNG", "TIFF")
    dtype = np.dtype(np.uint16 if deep else np.uint8)
    if fmt in ("JPEG", "BMP"):
        alpha = None
    luminance = like is not None and like.grayscale and fmt != "WEBP"
    if luminance and alpha is not None and dtype == np.uint16:
        # OpenCV writes no 16-bit gray+alpha PNG and Pillow opens no such TIFF: write RGBA.
        luminance = False
    icc = _icc_fits(like.icc_profile if like else None, luminance)
    if icc is not None and fmt == "PNG" and len(icc) > _PNG_ICC_LIMIT:
        warnings.warn(
            f"{name}: ICC profile of {len(icc):,} bytes is too large for PNG readers "
            f"(over {_PNG_ICC_LIMIT:,}); written without it, in sRGB",
            ImageWarning,
            stacklevel=3,
        )
        icc = None
    if fmt == "BMP":
        icc = None  # Pillow's BMP writer keeps no profile: the pixels stay sRGB
    if icc is not None and like is not None and like.stored is not None:
        pixels = _back_to_profile(pixels, like, icc)
    pixels = _to_depth(pixels, dtype)
    planes = [_luma(pixels)[:, :, None] if luminance else pixels]
    if alpha is not None:
        planes.append(_to_depth(alpha, dtype)[:, :, None])
    arr = np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]
    exif = _upright_exif(like.exif) if like is not None and fmt != "BMP" else None
    if fmt == "TIFF":
        return _encode_tiff(name, arr, luminance, icc, exif)
    if dtype == np.uint16:
        return _encode_png16(name, arr, icc, exif)
    options: dict[str, object] = {}
    if icc is not None:
        options["icc_profile"] = icc
    if exif is not None:
        options["exif"] = exif
    if fmt == "JPEG":
        # Full-resolution colour (4:4:4) at high quality: 4:2:0 blurs coloured edges like lips.
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        options.update(quality=quality, exact=True)  # exact: keep colour under transparent pixels
    elif fmt == "PNG":
        options.update(compress_level=_PNG_LEVEL)
    buf = BytesIO()
    try:
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, fmt, **options)
    except _DECODE_ERRORS as e:
        raise ImageError(f"{name}: cannot encode as {fmt} ({_one_line(e)})") from e
    return buf.getvalue()


def _back_to_profile(pixels: np.ndarray, like: LoadedImage, icc: bytes) -> np.ndarray:
    """sRGB ``pixels`` in ``icc``'s colour space; pixels equal to ``like.pixels`` get
    ``like.stored`` exactly, so that what was not changed is written as it was read."""
    stored = _to_depth(like.stored, pixels.dtype)
    out = colour.from_srgb(pixels, colour.parse_profile(icc))
    if like.pixels.shape == pixels.shape:
        same = (pixels == _to_depth(like.pixels, pixels.dtype)).all(axis=2)
        out[same] = stored[same]
    return out


def _upright_exif(exif: bytes | None) -> bytes | None:
    """``exif`` with Orientation set to 1, since the pixels written are upright."""
    if exif is None:
        return None
    parsed = Image.Exif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed.load(exif)
        except (*_DECODE_ERRORS, TypeError, KeyError):
            return None
    if parsed.get(_ORIENTATION, 1) == 1:
        return exif
    parsed[_ORIENTATION] = 1
    return parsed.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data, CRC-32 of type and data (PNG spec 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_png16(name: str, arr: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    """16-bit PNG by OpenCV, with iCCP and eXIf chunks (PNG spec 11.3.3.3, PNG 1.5 eXIf)
    inserted after IHDR."""
    bgr = arr[:, :, 0] if arr.shape[2] == 1 else arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    ok, encoded = cv2.imencode(".png", bgr)
    if not ok:
        raise ImageError(f"{name}: cannot encode as 16-bit PNG")
    png = encoded.tobytes()
    extra = b""
    if icc is not None:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif is not None:
        extra += _png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length and type, IHDR data, CRC
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _exif_ifd0(exif: bytes | None) -> tuple[bytearray, str, dict[int, bytes]]:
    """The EXIF TIFF structure to start a TIFF file with, its byte order, and its IFD0 entries
    (raw 12-byte fields by tag) minus the layout tags; a bare header when there is no EXIF.

    The structure stays at file offset 0, so the offsets in the entries remain valid.
    """
    tiff = bytearray(exif.removeprefix(_EXIF_PREFIX) if exif else b"")
    if tiff[:4] in (b"II*\x00", b"MM\x00*"):
        e = "<" if tiff[:2] == b"II" else ">"
        try:
            (offset,) = struct.unpack_from(e + "I", tiff, 4)
            (count,) = struct.unpack_from(e + "H", tiff, offset)
            fields = [bytes(tiff[offset + 2 + 12 * i : offset + 14 + 12 * i]) for i in range(count)]
            if fields and len(fields[-1]) != 12:
                raise struct.error("IFD0 runs past the end of the EXIF data")
            entries = {struct.unpack(e + "H", f[:2])[0]: f for f in fields}
            return tiff, e, {t: f for t, f in entries.items() if t not in _TIFF_LAYOUT_TAGS}
        except struct.error:
            pass
    return bytearray(b"II*\x00\x00\x00\x00\x00"), "<", {}


def _encode_tiff(
    name: str, arr: np.ndarray, luminance: bool, icc: bytes | None, exif: bytes | None
) -> bytes:
    """Baseline TIFF 6.0 of ``(H, W, C)`` uint8/uint16 samples, C = colour (1 or 3) + alpha.

    Strips are Deflate-compressed (Adobe TIFF Technical Note 2) after horizontal differencing
    (Predictor 2, TIFF 6.0 section 14). EXIF tags of IFD0 and their sub-IFDs are kept.
    """
    out, e, fields = _exif_ifd0(exif)

    def append(data: bytes) -> int:
        if len(out) % 2:
            out.append(0)  # TIFF values start on a word boundary
        offset = len(out)
        out.extend(data)
        return offset

    def field(tag: int, kind: int, values: list[int] | bytes) -> None:
        code = {3: "H", 4: "I", 7: "B"}[kind]  # SHORT, LONG, UNDEFINED
        data = bytes(values) if kind == 7 else struct.pack(f"{e}{len(values)}{code}", *values)
        value = data.ljust(4, b"\x00") if len(data) <= 4 else struct.pack(e + "I", append(data))
        fields[tag] = struct.pack(e + "HHI", tag, kind, len(values)) + value

    height, width, channels = arr.shape
    diff = arr.copy()
    diff[:, 1:] -= arr[:, :-1]  # unsigned wrap-around is what Predictor 2 specifies
    raw = diff.astype(diff.dtype.newbyteorder(e))
    rows = min(height, max(1, _TIFF_STRIP_BYTES // raw[0].nbytes))
    offsets, counts = [], []
    for y in range(0, height, rows):
        strip = zlib.compress(raw[y : y + rows].tobytes(), 6)
        offsets.append(append(strip))
        counts.append(len(strip))
    field(256, 4, [width])
    field(257, 4, [height])
    field(258, 3, [8 * arr.itemsize] * channels)
    field(259, 3, [8])  # Compression: Adobe Deflate
    field(262, 3, [1 if luminance else 2])  # PhotometricInterpretation: BlackIsZero or RGB
    field(273, 4, offsets)
    field(277, 3, [channels])
    field(278, 4, [rows])
    field(279, 4, counts)
    field(284, 3, [1])  # PlanarConfiguration: interleaved
    field(317, 3, [2])  # Predictor: horizontal differencing
    if channels in (2, 4):
        field(338, 3, [2])  # ExtraSamples: unassociated alpha
    if icc is not None:
        field(34675, 7, icc)
    ifd = struct.pack(e + "H", len(fields)) + b"".join(fields[t] for t in sorted(fields))
    out[4:8] = struct.pack(e + "I", append(ifd + b"\x00\x00\x00\x00"))
    if len(out) >= 1 << 32:
        raise ImageError(f"{name}: too large for a TIFF file (4 GiB)")
    return bytes(out)
