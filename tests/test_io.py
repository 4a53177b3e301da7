"""Tests of meiyan.io.image: formats, bit depth, alpha, metadata, orientation, errors, safety."""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
import warnings
import zlib
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from meiyan.errors import ImageError, ImageTooLargeError
from meiyan.io.image import LoadedImage, from_float, read_image, to_float, write_image

ARTIST, DESCRIPTION, TAKEN = 0x013B, 0x010E, 0x9003
EXIF_IFD, ORIENTATION = 0x8769, 0x0112
# The transposition that, applied to the displayed image, gives the stored one for orientation n.
STORED_FROM_DISPLAYED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def smooth(h: int = 24, w: int = 32, dtype: type = np.uint8) -> np.ndarray:
    """A smooth, asymmetric RGB test image (lossy codecs keep it close)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([x / (w - 1), y / (h - 1), 0.5 + 0.4 * np.sin(x / 5 + y / 7)], axis=2)
    return from_float(rgb.astype(np.float32), dtype)


def noise(shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Random samples over the dtype's whole range."""
    top = int(np.iinfo(dtype).max)
    return np.random.default_rng(seed).integers(0, top + 1, shape, dtype=dtype)


@functools.cache
def srgb_icc() -> bytes:
    """A real ICC profile (sRGB, made by LittleCMS), made once: its header holds the time."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF with Artist, ImageDescription, DateTimeOriginal (Exif sub-IFD) and an orientation."""
    exif = Image.Exif()
    exif[ARTIST] = "Jane Doe"
    exif[DESCRIPTION] = "portrait test"
    exif.get_ifd(EXIF_IFD)[TAKEN] = "2024:05:06 07:08:09"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return exif


def png_with_exif(png: bytes, exif: Image.Exif) -> bytes:
    """``png`` with an eXIf chunk after IHDR (PNG 1.5 extension), written independently."""
    data = exif.tobytes()[6:]
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + data))
    return png[:33] + chunk + png[33:]


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_lossless_round_trip_8bit(tmp_path: Path, suffix: str) -> None:
    pixels = noise((17, 23, 3))
    out = write_image(tmp_path / f"a{suffix}", pixels)
    loaded = read_image(out)
    assert loaded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.alpha is None and not loaded.grayscale
    assert loaded.format == {".png": "PNG", ".tif": "TIFF", ".bmp": "BMP"}[suffix]


def test_png_is_written_at_a_fast_zlib_level(tmp_path: Path) -> None:
    """8-bit PNGs are compressed at zlib level 3 (the stream header's FLEVEL says "fast"), not
    Pillow's default 6, which takes 2.5 times as long on a photo for 7% less file."""
    png = write_image(tmp_path / "a.png", smooth()).read_bytes()
    idat = png.index(b"IDAT") + 4
    assert png[idat + 1] >> 6 == 1  # FLEVEL: 0 fastest, 1 fast (levels 2-5), 2 default, 3 max


@pytest.mark.parametrize(("suffix", "fmt"), [(".jpg", "JPEG"), (".webp", "WEBP")])
def test_lossy_round_trip_8bit(tmp_path: Path, suffix: str, fmt: str) -> None:
    pixels = smooth()
    loaded = read_image(write_image(tmp_path / f"a{suffix}", pixels))
    assert loaded.format == fmt and loaded.pixels.shape == pixels.shape
    assert np.abs(loaded.pixels.astype(int) - pixels).mean() < 2.0


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_round_trip_exact(tmp_path: Path, suffix: str) -> None:
    pixels, alpha = noise((19, 21, 3), np.uint16), noise((19, 21), np.uint16, seed=1)
    loaded = read_image(write_image(tmp_path / f"a{suffix}", pixels, alpha=alpha))
    assert loaded.pixels.dtype == np.uint16 and loaded.alpha is not None
    np.testing.assert_array_equal(loaded.pixels, pixels)
    np.testing.assert_array_equal(loaded.alpha, alpha)
    # An independent decoder (OpenCV) reads the same 16-bit samples.
    plain = write_image(tmp_path / f"b{suffix}", pixels)
    np.testing.assert_array_equal(cv2.imread(str(plain), cv2.IMREAD_UNCHANGED)[:, :, ::-1], pixels)


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_16bit_becomes_8bit_where_format_cannot_hold_it(tmp_path: Path, suffix: str) -> None:
    pixels = smooth(dtype=np.uint16)
    loaded = read_image(write_image(tmp_path / f"a{suffix}", pixels))
    assert loaded.pixels.dtype == np.uint8
    assert np.abs(loaded.pixels.astype(int) - pixels / 257.0).mean() < 2.0


def test_to_float_from_float_round_trip_and_rounding() -> None:
    for dtype in (np.uint8, np.uint16):
        every = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        x = to_float(every)
        assert x.dtype == np.float32 and x[0] == 0.0 and x[-1] == 1.0
        np.testing.assert_array_equal(from_float(x, dtype), every)
    x = np.array([-0.3, 0.4 / 255, 0.6 / 255, 1.7], np.float32)
    np.testing.assert_array_equal(from_float(x, np.uint8), [0, 0, 1, 255])
    assert from_float(x, np.uint16)[-1] == 65535
    with pytest.raises(ValueError):
        from_float(np.array([np.nan], np.float32), np.uint8)
    with pytest.raises(TypeError):
        to_float(np.zeros(3, np.float32))


# ------------------------------------------------------------------------ reading variants


def test_read_palette_la_gray16_and_cmyk(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 3))
    pal.putpalette([255, 0, 0, 0, 255, 0])
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    loaded = read_image(tmp_path / "p.png")
    assert loaded.alpha is not None and not loaded.grayscale
    assert loaded.alpha[1, 1] == 255 and loaded.alpha[0, 0] == 0
    assert tuple(loaded.pixels[1, 1]) == (0, 255, 0)

    la = noise((5, 6, 2))
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    loaded = read_image(tmp_path / "la.png")
    assert loaded.grayscale and loaded.pixels.shape == (5, 6, 3)
    np.testing.assert_array_equal(loaded.pixels, np.repeat(la[:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(loaded.alpha, la[:, :, 1])

    gray16 = noise((5, 6), np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    loaded = read_image(tmp_path / "g16.png")
    assert loaded.grayscale and loaded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(loaded.pixels[:, :, 1], gray16)

    Image.new("CMYK", (4, 4), (255, 0, 0, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    loaded = read_image(tmp_path / "cmyk.jpg")
    assert (
        loaded.icc_profile is None
        and np.abs(loaded.pixels[0, 0].astype(int) - (0, 255, 255)).max() < 4
    )


def test_grayscale_is_written_as_one_channel(tmp_path: Path) -> None:
    gray = noise((6, 7))
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    like = read_image(tmp_path / "g.png")
    for suffix, mode in [(".png", "L"), (".tif", "L"), (".jpg", "L")]:
        out = write_image(tmp_path / f"out{suffix}", like.pixels, like=like)
        with Image.open(out) as im:
            assert im.mode == mode
        assert read_image(out).grayscale
    # An ICC profile is kept only where its colour space fits the channels written.
    rgb_profiled = dataclasses.replace(like, icc_profile=srgb_icc())
    gray_out = write_image(tmp_path / "p.png", like.pixels, like=rgb_profiled)
    rgb_out = write_image(tmp_path / "p.webp", like.pixels, like=rgb_profiled)  # WebP is RGB
    assert read_image(gray_out).icc_profile is None
    assert read_image(rgb_out).icc_profile == srgb_icc()
    out16 = write_image(tmp_path / "out16.tif", like.pixels.astype(np.uint16) * 257, like=like)
    loaded = read_image(out16)
    assert loaded.grayscale and loaded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(loaded.pixels[:, :, 0], gray.astype(np.uint16) * 257)


# ------------------------------------------------------------------------------- metadata


@pytest.fixture
def tagged_jpeg(tmp_path: Path) -> Path:
    """A JPEG with a real ICC profile and EXIF saying orientation 6 (rotate 90° clockwise)."""
    path = tmp_path / "src" / "tagged.jpg"
    path.parent.mkdir()
    stored = Image.fromarray(smooth(16, 24)).transpose(STORED_FROM_DISPLAYED[6])
    stored.save(path, quality=95, icc_profile=srgb_icc(), exif=make_exif(orientation=6).tobytes())
    return path


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("o.jpg", np.uint8),
        ("o.png", np.uint8),
        ("o16.png", np.uint16),
        ("o.webp", np.uint8),
        ("o.tif", np.uint8),
        ("o16.tif", np.uint16),
    ],
)
def test_icc_and_exif_are_kept_with_orientation_reset(
    tmp_path: Path, tagged_jpeg: Path, name: str, dtype: type
) -> None:
    like = read_image(tagged_jpeg)
    assert like.pixels.shape == (16, 24, 3)  # displayed size; the file stores 24 rows of 16
    assert np.abs(like.pixels.astype(int) - smooth(16, 24)).mean() < 3.0
    assert like.icc_profile == srgb_icc()
    loaded_exif = Image.Exif()
    loaded_exif.load(like.exif)
    assert loaded_exif[ORIENTATION] == 1 and loaded_exif[ARTIST] == "Jane Doe"
    pixels = like.pixels.astype(dtype) * (257 if dtype == np.uint16 else 1)
    out = write_image(tmp_path / name, pixels, like=like)
    with Image.open(out) as im:  # read back by Pillow directly, not by read_image
        exif = im.getexif()
        assert im.info.get("icc_profile") == srgb_icc()
        assert exif[ARTIST] == "Jane Doe" and exif[DESCRIPTION] == "portrait test"
        assert exif.get_ifd(EXIF_IFD)[TAKEN] == "2024:05:06 07:08:09"
        assert exif[ORIENTATION] == 1
        assert im.size == (24, 16)
    again = read_image(out)
    assert again.pixels.dtype == dtype and again.pixels.shape == (16, 24, 3)


def test_writer_sets_orientation_1_in_any_exif(tmp_path: Path) -> None:
    """Pixels are written upright, so even hand-made EXIF saying "rotate" is corrected."""
    exif = make_exif(orientation=6).tobytes()
    like = LoadedImage(smooth(), None, tmp_path / "x.jpg", "JPEG", None, exif, False)
    with Image.open(write_image(tmp_path / "o.jpg", like.pixels, like=like)) as im:
        assert im.getexif()[ORIENTATION] == 1 and im.getexif()[ARTIST] == "Jane Doe"


def test_exif_from_tiff_keeps_tags_but_not_tiff_layout(tmp_path: Path) -> None:
    Image.fromarray(smooth()).save(tmp_path / "t.tif", exif=make_exif().tobytes())
    like = read_image(tmp_path / "t.tif")
    exif = Image.Exif()
    exif.load(like.exif)
    assert exif[ARTIST] == "Jane Doe" and 273 not in exif and 256 not in exif  # StripOffsets, width
    out = write_image(tmp_path / "t.jpg", like.pixels, like=like)
    with Image.open(out) as im:
        assert im.getexif()[ARTIST] == "Jane Doe"


def test_bmp_and_no_metadata(tmp_path: Path, tagged_jpeg: Path) -> None:
    like = read_image(tagged_jpeg)
    loaded = read_image(write_image(tmp_path / "o.bmp", like.pixels, like=like))
    assert loaded.exif is None and loaded.icc_profile is None
    plain = read_image(write_image(tmp_path / "plain.png", smooth()))
    assert plain.exif is None and plain.icc_profile is None


# ---------------------------------------------------------------------------------- alpha


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_alpha_is_untouched(tmp_path: Path, suffix: str) -> None:
    rgba = np.concatenate([smooth(), noise((24, 32, 1), seed=3)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "src.png")
    like = read_image(tmp_path / "src.png")
    np.testing.assert_array_equal(like.alpha, rgba[:, :, 3])
    loaded = read_image(write_image(tmp_path / f"out{suffix}", like.pixels, like=like))
    assert loaded.alpha is not None
    np.testing.assert_array_equal(loaded.alpha, rgba[:, :, 3])


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_alpha_dropped_where_format_has_none(tmp_path: Path, suffix: str) -> None:
    out = write_image(tmp_path / f"o{suffix}", smooth(), alpha=noise((24, 32)))
    assert read_image(out).alpha is None


# ---------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_displayed_image(tmp_path: Path, orientation: int) -> None:
    displayed = noise((3, 5, 4), seed=orientation)  # asymmetric RGBA, any flip or turn shows
    stored = Image.fromarray(displayed, "RGBA")
    if orientation > 1:
        stored = stored.transpose(STORED_FROM_DISPLAYED[orientation])
    path = tmp_path / f"o{orientation}.png"
    stored.save(path, exif=make_exif(orientation).tobytes())
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.pixels, displayed[:, :, :3])
    np.testing.assert_array_equal(loaded.alpha, displayed[:, :, 3])
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[ORIENTATION] == 1 and exif[ARTIST] == "Jane Doe"


def test_orientation_applies_to_16bit_png_and_tiff(tmp_path: Path) -> None:
    displayed = noise((3, 5, 3), np.uint16)
    stored = np.rot90(displayed, k=1)  # orientation 6 stores the image turned counter-clockwise
    ok, png = cv2.imencode(".png", np.ascontiguousarray(stored[:, :, ::-1]))
    assert ok
    (tmp_path / "o6.png").write_bytes(png_with_exif(png.tobytes(), make_exif(6)))
    loaded = read_image(tmp_path / "o6.png")
    assert loaded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(loaded.pixels, displayed)

    gray = noise((3, 5), np.uint16)
    Image.fromarray(np.rot90(gray, k=-1).copy()).save(  # orientation 8: stored turned clockwise
        tmp_path / "o8.tif", exif=make_exif(8).tobytes()
    )
    loaded = read_image(tmp_path / "o8.tif")
    assert loaded.grayscale and loaded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(loaded.pixels[:, :, 2], gray)


# --------------------------------------------------------------------------------- errors


def test_16bit_tiff_with_separate_planes_is_refused_not_misread(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    planes = noise((3, 5, 6), np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planes, planarconfig="separate", photometric="rgb")
    with pytest.raises(ImageError, match=r"planar\.tif: 16-bit TIFF with separate colour planes"):
        read_image(tmp_path / "planar.tif")


def _bad_files(folder: Path) -> dict[str, Path]:
    """One file per kind of bad input."""
    Image.fromarray(noise((40, 40, 3))).save(folder / "good.jpg", quality=90)
    Image.fromarray(noise((40, 40, 3))).save(folder / "good.png")
    jpeg, png = (folder / "good.jpg").read_bytes(), (folder / "good.png").read_bytes()
    files = {
        "truncated_jpeg": (folder / "cut.jpg", jpeg[: len(jpeg) // 2]),
        "truncated_png": (folder / "cut.png", png[: len(png) // 2]),
        "corrupt_png": (folder / "bad.png", png[:200] + b"\x00" * 400 + png[600:]),
        "corrupt_header": (folder / "hdr.jpg", b"\xff\xd8\xff" + b"\x13" * 64),
        "empty": (folder / "empty.png", b""),
        "text_as_jpeg": (folder / "notes.jpg", b"just some text\nnot a picture\n"),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {key: path for key, (path, _) in files.items()}


@pytest.mark.parametrize(
    "kind",
    [
        "truncated_jpeg",
        "truncated_png",
        "corrupt_png",
        "corrupt_header",
        "empty",
        "text_as_jpeg",
        "missing",
        "folder",
        "over_limit",
    ],
)
def test_bad_inputs_raise_one_line_image_error(tmp_path: Path, kind: str) -> None:
    files = _bad_files(tmp_path)
    files["missing"] = tmp_path / "absent.jpg"
    files["folder"] = tmp_path / "a_folder.png"
    files["folder"].mkdir()
    files["over_limit"] = tmp_path / "good.png"
    limit = 1000 if kind == "over_limit" else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning may leak either
        with pytest.raises(ImageError) as info:
            read_image(files[kind], max_pixels=limit)
    message = str(info.value)
    assert "\n" not in message and files[kind].name in message
    if kind == "over_limit":
        assert "1,000" in message


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    """A tiny PNG whose header claims 100 000 × 100 000 pixels is refused unread."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunks = b"".join(
        struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
        for k, d in [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 100)), (b"IEND", b"")]
    )
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    too_large = r"bomb\.png: .*larger than the limit of 100,000,000"
    with pytest.raises(ImageTooLargeError, match=too_large):
        read_image(tmp_path / "bomb.png")


def test_pillow_limit_does_not_interfere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40×40 is a "bomb" to Pillow now
    Image.fromarray(noise((40, 40, 3))).save(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "p.png", max_pixels=None).pixels.shape == (40, 40, 3)
        assert read_image(tmp_path / "p.png", max_pixels=1600).pixels.shape == (40, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


def test_bad_write_arguments(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"a\.gif: unsupported output format"):
        write_image(tmp_path / "a.gif", smooth())
    with pytest.raises(TypeError):
        write_image(tmp_path / "a.png", smooth().astype(np.float32))
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", smooth(), alpha=noise((3, 3)))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- write safety


def test_no_overwrite_without_flag(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageError) as info:
        write_image(target, smooth())
    assert "out.png" in str(info.value) and "--overwrite" in str(info.value)
    assert target.read_bytes() == b"precious"
    write_image(target, smooth(), overwrite=True)
    np.testing.assert_array_equal(read_image(target).pixels, smooth())


def test_input_is_never_modified(tmp_path: Path, tagged_jpeg: Path) -> None:
    before = tagged_jpeg.read_bytes()
    like = read_image(tagged_jpeg)
    write_image(tmp_path / "result.jpg", 255 - like.pixels, like=like)
    for target in (tagged_jpeg, tagged_jpeg.parent / ".." / "src" / tagged_jpeg.name):
        with pytest.raises(ImageError, match=r"tagged\.jpg") as info:
            write_image(target, like.pixels, like=like, overwrite=True)
        assert "input" in str(info.value)
    assert tagged_jpeg.read_bytes() == before


def test_creates_parent_folders(tmp_path: Path) -> None:
    out = write_image(tmp_path / "a" / "b" / "c.png", smooth())
    assert out.is_file() and out.parent.is_dir()


def test_no_temporary_file_left_when_encoding_fails(tmp_path: Path) -> None:
    too_wide = np.zeros((1, 17_000, 3), np.uint8)  # WebP holds at most 16383 pixels a side
    with pytest.raises(ImageError, match=r"wide\.webp: cannot encode"):
        write_image(tmp_path / "wide.webp", too_wide)
    assert list(tmp_path.iterdir()) == []


def test_no_temporary_file_left_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ImageError, match=r"out\.png: cannot write"):
        write_image(target, smooth(), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert target.read_bytes() == b"old"


# ------------------------------------------------------------ threads, bytes, colour, formats


def test_decoding_from_threads_leaves_pillow_and_warnings_alone(tmp_path: Path) -> None:
    """No global lock or global switch: Pillow's limit and the warning filters never change."""
    import threading

    paths = []
    for i in range(8):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(noise((300, 300, 3), seed=i)).save(paths[-1])
    saved_filters = list(warnings.filters)
    limit = Image.MAX_IMAGE_PIXELS
    seen: set[object] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            shapes = list(pool.map(lambda p: read_image(p).pixels.shape, paths * 5))
    finally:
        done.set()
        watcher.join()
    assert shapes == [(300, 300, 3)] * 40
    assert seen == {limit}
    assert warnings.filters == saved_filters


def test_pixel_limit_is_per_call_whatever_pillows_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(noise((40, 40, 3))).save(tmp_path / "p.webp", lossless=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # WebP's own plugin checks it too
    assert read_image(tmp_path / "p.webp").pixels.shape == (40, 40, 3)
    with pytest.raises(ImageError, match="limit of 1,599"):
        read_image(tmp_path / "p.webp", max_pixels=1599)
    with pytest.raises(Image.DecompressionBombError):  # others' use of Pillow is unchanged
        Image.open(tmp_path / "p.webp")


def test_bytes_in_bytes_out_keeps_metadata(tmp_path: Path) -> None:
    from meiyan.io.image import encode_image, read_bytes

    rgb, alpha = smooth(), noise((24, 32), seed=3)
    buf = BytesIO()
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    rgba.save(buf, "PNG", icc_profile=srgb_icc(), exif=make_exif(6).tobytes())
    img = read_bytes(buf.getvalue(), name="upload.png")
    assert img.path is None and img.format == "PNG" and img.pixels.shape == (32, 24, 3)
    data = encode_image(255 - img.pixels, like=img)
    back = read_bytes(data)
    assert back.format == "PNG" and back.icc_profile == srgb_icc()
    np.testing.assert_array_equal(back.pixels, 255 - img.pixels)
    np.testing.assert_array_equal(back.alpha, img.alpha)
    exif = Image.Exif()
    exif.load(back.exif)
    assert exif[ARTIST] == "Jane Doe" and exif.get(ORIENTATION, 1) == 1
    jpeg = read_bytes(encode_image(img.pixels, like=img, format="jpeg", quality=50))
    assert jpeg.format == "JPEG" and jpeg.alpha is None
    with pytest.raises(ImageError, match=r"^upload\.png: not a"):
        read_bytes(b"not an image at all", name="upload.png")
    with pytest.raises(ImageError, match="empty"):
        read_bytes(b"")
    with pytest.raises(ValueError, match="format"):
        encode_image(img.pixels, format="gif")


def test_animated_inputs_warn_that_only_the_first_frame_is_read(tmp_path: Path) -> None:
    frames = [Image.fromarray(noise((16, 16, 3), seed=i)) for i in range(3)]
    for suffix in (".png", ".webp"):
        path = tmp_path / f"anim{suffix}"
        frames[0].save(path, save_all=True, append_images=frames[1:], lossless=True)
        with pytest.warns(UserWarning, match=rf"anim\{suffix}: 3 frames .*only the first"):
            img = read_image(path)
        np.testing.assert_array_equal(img.pixels, np.asarray(frames[0]))


def test_icc_profile_too_large_for_png_is_dropped_with_a_warning(tmp_path: Path) -> None:
    from bad_inputs import matrix_icc

    big = matrix_icc(3_000_000)
    Image.fromarray(smooth()).save(tmp_path / "big.jpg", icc_profile=big, quality=95)
    img = read_image(tmp_path / "big.jpg")
    assert img.icc_profile == big and img.stored is not None
    with pytest.warns(UserWarning, match=r"out\.png: ICC profile of 3,000,000 bytes"):
        write_image(tmp_path / "out.png", img.pixels, like=img)
    back = read_image(tmp_path / "out.png")  # readable, and in sRGB as the warning says
    assert back.icc_profile is None
    np.testing.assert_array_equal(back.pixels, img.pixels)


def test_display_p3_is_worked_on_in_srgb_and_written_back() -> None:
    from bad_inputs import matrix_icc
    from PIL import ImageCms

    from meiyan.io.image import encode_image, read_bytes

    p3 = matrix_icc()
    stored = noise((64, 64, 3), seed=5)
    buf = BytesIO()
    Image.fromarray(stored).save(buf, "PNG", icc_profile=p3)
    img = read_bytes(buf.getvalue())
    np.testing.assert_array_equal(img.stored, stored)
    reference = ImageCms.profileToProfile(
        Image.fromarray(stored),
        ImageCms.ImageCmsProfile(BytesIO(p3)),
        ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    diff = np.abs(img.pixels.astype(int) - np.asarray(reference).astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.6  # as LittleCMS converts it
    same = read_bytes(encode_image(img.pixels, like=img), to_srgb=False)
    np.testing.assert_array_equal(same.pixels, stored)  # unchanged pixels: exactly as stored
    assert same.icc_profile == p3
    changed = img.pixels.copy()
    changed[:8] = 255 - changed[:8]
    out = read_bytes(encode_image(changed, like=img))  # back in P3, read again into sRGB
    error = np.abs(out.pixels.astype(int) - changed.astype(int))[:8]
    assert error.mean() < 0.5 and np.percentile(error, 99) <= 2  # 8-bit P3 steps, near gamut
    assert not read_bytes(buf.getvalue(), to_srgb=False).stored


def test_heic_without_pillow_heif_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    path = tmp_path / "phone.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if not installed
    with pytest.raises(ImageError, match=r"phone\.heic: .*pillow-heif.*meiyan\[heif\]"):
        read_image(path)


def test_heic_read_with_pillow_heif(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
    rgb = smooth(64, 64)
    pillow_heif.from_bytes(mode="RGB", size=(64, 64), data=rgb.tobytes()).save(
        tmp_path / "p.heic", quality=95
    )
    img = read_image(tmp_path / "p.heic")
    assert img.format == "HEIF" and img.pixels.shape == (64, 64, 3)
    assert np.abs(img.pixels.astype(int) - rgb.astype(int)).mean() < 4


def test_write_file_has_exactly_one_winner(tmp_path: Path) -> None:
    """The existence check and the write are one step: of 8 racing writers, one succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    from meiyan.io.atomic import write_file

    def attempt(i: int) -> bool:
        try:
            write_file(tmp_path / "r.bin", bytes([i]) * 100_000)
            return True
        except ImageError as e:
            assert "already exists" in str(e)
            return False

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(8)))
    assert sum(wins) == 1
    assert (tmp_path / "r.bin").read_bytes() == bytes([wins.index(True)]) * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.bin"]


def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match=r"pipe\.jpg: is a FIFO"):
        read_image(tmp_path / "pipe.jpg")
