"""A corpus of bad and unusual input files, made at test time (nothing binary is committed).

``make_corpus(folder)`` writes the files and returns, by file name, whether each must be
refused with an error (``True``) or may be processed (``False``, possibly with a warning).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width × height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(k, d)
        for k, d in [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 64)), (b"IEND", b"")]
    )


def _encoded(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def matrix_icc(size: int = 0) -> bytes:
    """An RGB matrix/TRC ICC profile (Display P3 primaries, gamma 2.2), padded to ``size``."""
    colorants = {  # Display P3 primaries adapted to D50 (as in Apple's Display P3 profile)
        b"rXYZ": (0.515121, 0.241196, -0.001053),
        b"gXYZ": (0.291977, 0.692245, 0.041885),
        b"bXYZ": (0.157104, 0.066574, 0.784073),
        b"wtpt": (0.964203, 1.0, 0.824905),
    }
    tags = {k: b"XYZ \0\0\0\0" + struct.pack(">3i", *(round(v * 65536) for v in xyz))
            for k, xyz in colorants.items()}  # fmt: skip
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags.update({b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})
    tags[b"desc"] = b"desc\0\0\0\0" + struct.pack(">I", 8) + b"test P3\0" + b"\0" * 79
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags.items():
        body += b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", sig, offset + len(data), len(body))
        data += body
    data += b"\0" * max(0, size - offset - len(data))
    total = offset + len(data)
    header = struct.pack(">I4s4s", total, b"lcms", b"\x04\x30\0\0") + b"mntrRGB XYZ "
    header += b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">3i", 63190, 65536, 54061)
    header = header.ljust(128, b"\0")
    return header + struct.pack(">I", len(tags)) + table + data


def make_corpus(folder: Path, good: np.ndarray) -> dict[str, bool]:
    """Write the corpus into ``folder``; ``good`` is an RGB uint8 photo to derive files from."""
    folder.mkdir(parents=True, exist_ok=True)
    small = good[::8, ::8].copy()
    jpeg, png = _encoded(small, "JPEG", quality=90), _encoded(small, "PNG")
    webp, tiff = _encoded(small, "WEBP"), _encoded(small, "TIFF")
    rng = np.random.default_rng(0)
    bad: dict[str, bytes] = {
        "empty.jpg": b"",
        "empty.png": b"",
        "random.jpg": rng.bytes(3000),
        "random.png": rng.bytes(3000),
        "random.webp": rng.bytes(3000),
        "random.tif": rng.bytes(3000),
        "text.bmp": b"hello, not a bitmap\n",
        "header_only.jpg": jpeg[:20],
        "bomb.png": _png_bomb(100_000, 100_000),
        "bomb_wide.png": _png_bomb(1_000_000, 200),
        "corrupt_middle.png": png[:100] + b"\0" * 300 + png[400:],
    }
    for name, data in (("jpg", jpeg), ("png", png), ("webp", webp), ("tif", tiff)):
        for share in (0.1, 0.5, 0.9):
            bad[f"cut_{int(share * 100)}.{name}"] = data[: int(len(data) * share)]
    odd: dict[str, bytes] = {
        "one_pixel.png": _encoded(small[:1, :1], "PNG"),
        "strip_h.png": _encoded(small[:1], "PNG"),
        "strip_v.jpg": _encoded(np.ascontiguousarray(small[:, :1]), "JPEG"),
        "grey.png": _encoded(small[..., 0], "PNG"),
        "grey_alpha.png": _encoded(np.dstack([small[..., 0], small[..., 1]]), "PNG"),
        "large_icc.jpg": _encoded(small, "JPEG", icc_profile=matrix_icc(3_000_000)),
        "p3.png": _encoded(small, "PNG", icc_profile=matrix_icc()),
        "name with spaces é.jpg": jpeg,
        "-starts-with-dash.png": png,
        "UPPER.JPG": jpeg,
    }
    buf = io.BytesIO()
    Image.fromarray(small).convert("P").save(buf, "PNG")
    odd["palette.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(small).convert("CMYK").save(buf, "JPEG")
    odd["cmyk.jpg"] = buf.getvalue()
    import cv2

    ok, enc = cv2.imencode(".png", (small[..., ::-1].astype(np.uint16) * 257))
    assert ok
    odd["sixteen.png"] = enc.tobytes()
    odd["corrupt_exif.jpg"] = (
        jpeg[:2]
        + b"\xff\xe1\x00\x20Exif\x00\x00II*\x00\xff\xff\xff\x7f"
        + (b"\x13" * 16)
        + jpeg[2:]
    )
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        odd[f"orientation_{orientation}.jpg"] = _encoded(small, "JPEG", exif=exif.tobytes())
    frames = [Image.fromarray(np.roll(small, 5 * i, axis=1)) for i in range(3)]
    for fmt, suffix in (("PNG", "png"), ("WEBP", "webp")):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
        odd[f"animated.{suffix}"] = buf.getvalue()
    for name, data in {**bad, **odd}.items():
        (folder / name).write_bytes(data)
    return {**dict.fromkeys(bad, True), **dict.fromkeys(odd, False)}
