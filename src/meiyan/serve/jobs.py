"""The jobs behind REST and the UI: decoded uploads in, pixels (or JSON) and warnings out.

Each job finds the faces once (:func:`meiyan.analyze`) and hands them on as ``faces=``, like the
command line. Warnings that the library raises while a job runs in a thread are collected for
that job only (:func:`collected`); they travel in a response header.
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from meiyan.engines import EngineWarning
from meiyan.errors import ImageTooLargeError, MeiyanError, MeiyanWarning
from meiyan.face import analyze
from meiyan.io.image import (
    ImageWarning,
    LoadedImage,
    encode_image,
    from_float,
    read_bytes,
    to_float,
)
from meiyan.retouch.beautify import BeautifyResult, retouch
from meiyan.serve.schema import (
    BeautifyJob,
    EditJob,
    JobSettings,
    LandmarksJob,
    MakeupJob,
    MaskJob,
    OutputOptions,
    SmoothJob,
)

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
               "TIFF": "image/tiff", "BMP": "image/bmp"}
_SUFFIX_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "tif": "TIFF", "bmp": "BMP"}
FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "beautify": (("image",), ()),
    "smooth": (("image",), ()),
    "mask": (("image",), ()),
    "landmarks": (("image",), ()),
    "makeup": (("image",), ("reference",)),
    "edit": (("image", "mask"), ("sketch", "colour")),
}
"""The files of each job: (required, optional) multipart field names."""


class TooLargeError(MeiyanError):
    """An upload over the byte limit or an image over the pixel limit (HTTP 413)."""


class UnprocessableError(MeiyanError):
    """Inputs that cannot go together: a missing file, a guide of the wrong size (HTTP 422)."""


# ------------------------------------------------------------------------------ warnings

_local = threading.local()
_install = threading.Lock()
_previous = warnings.showwarning
_CATEGORIES = (MeiyanWarning, EngineWarning, ImageWarning)


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: object = None, line: str | None = None) -> None:
    sink = getattr(_local, "sink", None)
    if sink is None:
        _previous(message, category, filename, lineno, file, line)
    elif (text := " ".join(str(message).split())) not in sink:
        sink.append(text)


@contextlib.contextmanager
def collected() -> Iterator[list[str]]:
    """The warnings of meiyan raised in this thread meanwhile, each once, in order; others
    are shown as usual."""
    global _previous
    with _install:
        if warnings.showwarning is not _show:  # (again) after something replaced it
            _previous, warnings.showwarning = warnings.showwarning, _show
        for category in _CATEGORIES:
            warnings.filterwarnings("always", category=category)
    _local.sink = sink = []
    try:
        yield sink
    finally:
        _local.sink = None


# ------------------------------------------------------------------------------ images


def decode(data: bytes, name: str, max_pixels: int) -> LoadedImage:
    """The upload ``name`` decoded; :class:`TooLargeError` over ``max_pixels``."""
    try:
        return read_bytes(data, max_pixels=max_pixels, name=name)
    except ImageTooLargeError as e:
        raise TooLargeError(str(e)) from None


def rgb(img: LoadedImage) -> np.ndarray:
    """The pixels as the public APIs take them: uint8 as is, 16-bit as float32 in [0, 1]."""
    return img.pixels if img.pixels.dtype == np.uint8 else to_float(img.pixels)


def back(pixels: np.ndarray, img: LoadedImage) -> np.ndarray:
    """A result of :func:`rgb`'s pixels at the depth of ``img``."""
    return pixels if pixels.dtype == img.pixels.dtype else from_float(pixels, img.pixels.dtype)


def encode(pixels: np.ndarray, img: LoadedImage, out: OutputOptions) -> tuple[bytes, str]:
    """The encoded result like ``img`` (its format unless ``out`` names one) and its media
    type."""
    data = encode_image(pixels, like=img, format=out.format, quality=out.quality)
    fmt = _SUFFIX_FORMATS[out.format] if out.format else img.format
    return data, MEDIA_TYPES.get(fmt, "image/jpeg")


def mask_png(mask: np.ndarray, img: LoadedImage) -> bytes:
    """A float mask in [0, 1] as an 8-bit grey PNG, upright, without colour profile."""
    grey = np.round(np.clip(mask, 0, 1) * 255.0).astype(np.uint8)
    like = replace(img, alpha=None, icc_profile=None, exif=None, grayscale=True, stored=None)
    return encode_image(np.repeat(grey[..., None], 3, axis=2), like=like, format="png")


# ------------------------------------------------------------------------------ jobs


def beautify(img: LoadedImage, s: BeautifyJob) -> tuple[np.ndarray, BeautifyResult]:
    """The retouched pixels and the :class:`~meiyan.retouch.beautify.BeautifyResult`."""
    settings = s.settings()
    px = rgb(img)
    faces = None
    if settings.skin != "none" and not settings.is_identity:
        faces = analyze(px, min_face=settings.min_face)
    result = retouch(px, settings, faces=faces)
    for message in result.warnings:
        warnings.warn(message, MeiyanWarning, stacklevel=2)
    return back(result.image, img), result


def smooth(img: LoadedImage, s: SmoothJob) -> np.ndarray:
    """Skin smoothing alone."""
    from meiyan.retouch.smooth import smooth as smooth_image
    from meiyan.skin import SLOT

    needs_faces = s.skin != "none" and SLOT.get(s.skin, job="smooth").needs_faces
    px = rgb(img)
    faces = analyze(px, min_face=s.min_face) if needs_faces and s.strength > 0 else None
    out = smooth_image(px, filter=s.filter, strength=s.strength, skin=s.skin,
                       texture=s.texture, faces=faces)
    return back(out, img)


def mask(img: LoadedImage, s: MaskJob) -> np.ndarray:
    """The skin mask, float32 in [0, 1]."""
    from meiyan.skin import SLOT, skin_mask

    px = rgb(img)
    faces = analyze(px, min_face=s.min_face) if SLOT.get(s.method).needs_faces else None
    return skin_mask(px, s.method, faces=faces)


def landmarks(img: LoadedImage, s: LandmarksJob, name: str) -> dict:
    """The command line's JSON record of the faces (``image`` is the upload's file name)."""
    from meiyan.cli.face_cmds import face_record

    faces = analyze(rgb(img), min_face=s.min_face)
    if not faces:
        warnings.warn("no face found", MeiyanWarning, stacklevel=2)
    h, w = img.pixels.shape[:2]
    return {"image": name, "width": w, "height": h, "faces": [face_record(f) for f in faces]}


def makeup(img: LoadedImage, s: MakeupJob, reference: LoadedImage | None) -> np.ndarray:
    """A named look or the reference's makeup on every face; a faceless photo comes back
    unchanged with a warning."""
    from meiyan.errors import NoFaceError
    from meiyan.makeup import Reference
    from meiyan.makeup import makeup as make_up

    if (reference is None) == (s.look is None):
        raise UnprocessableError("give either a reference photo (field reference) or a look")
    px = rgb(img)
    faces = analyze(px, min_face=s.min_face)
    if not faces:
        warnings.warn("no face found: returned unchanged", MeiyanWarning, stacklevel=2)
        return img.pixels.copy()
    ref = None
    if reference is not None:
        try:
            ref = Reference.of(rgb(reference))
        except NoFaceError as e:
            raise UnprocessableError(str(e)) from None
    out = make_up(px, reference=ref, look=s.look, regions=s.regions, shade=s.shade,
                  faces=faces, engine=s.engine)
    return back(out, img)


def _guide(img: LoadedImage, guide: LoadedImage | None, name: str) -> LoadedImage | None:
    if guide is not None and guide.pixels.shape[:2] != img.pixels.shape[:2]:
        (h, w), (gh, gw) = img.pixels.shape[:2], guide.pixels.shape[:2]
        raise UnprocessableError(
            f"{name} is {gw}x{gh}, the image is {w}x{h} (after EXIF orientation)"
        )
    return guide


def edit(img: LoadedImage, s: EditJob, hole: LoadedImage, sketch: LoadedImage | None = None,
         colour: LoadedImage | None = None) -> np.ndarray:
    """The region ``hole`` (alpha, else luminance, above 127) filled, following ``sketch``
    (white lines) and ``colour`` (strokes), as ``meiyan edit`` reads them."""
    from meiyan.cli.edit_cmds import _colour, _lines, _mask
    from meiyan.edit import edit as edit_image

    hole = _guide(img, hole, "mask")
    sketch, colour = _guide(img, sketch, "sketch"), _guide(img, colour, "colour")
    return edit_image(img.pixels, _mask(hole), engine=s.engine, seed=s.seed,
                      sketch=None if sketch is None else _lines(sketch),
                      colour=None if colour is None else _colour(colour))


@dataclass
class Reply:
    """What a REST job answers: the body, its media type and the warnings."""

    body: bytes
    media_type: str
    warnings: list[str] = field(default_factory=list)


def run(job: str, settings: JobSettings, out: OutputOptions, files: dict[str, tuple[bytes, str]],
        max_pixels: int) -> Reply:
    """Run ``job`` on uploaded ``files`` (field -> (bytes, client file name)) in this thread."""
    with collected() as caught:
        images = {k: decode(data, k, max_pixels) for k, (data, _) in files.items()}
        img, s = images["image"], settings
        if job == "mask":
            return Reply(mask_png(mask(img, s), img), "image/png", caught)
        if job == "landmarks":
            name = files["image"][1].replace("\\", "/").rsplit("/", 1)[-1] or "image"
            return Reply(json.dumps(landmarks(img, s, name)).encode(), "application/json", caught)
        if job == "beautify":
            pixels = beautify(img, s)[0]
        elif job == "smooth":
            pixels = smooth(img, s)
        elif job == "makeup":
            pixels = makeup(img, s, images.get("reference"))
        else:
            pixels = edit(img, s, images["mask"], images.get("sketch"), images.get("colour"))
        return Reply(*encode(pixels, img, out), caught)
