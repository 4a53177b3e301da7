"""Expanding command-line inputs into image files, checking them, and naming outputs after them."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from meiyan.errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".jfif",
     ".heic", ".heif", ".avif"}
)  # fmt: skip
WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp"})
"""Output suffixes; an input of another kind (HEIC, AVIF) is written as JPEG by default."""

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Paths as given, and each folder's entries with an image suffix (not recursive, sorted).

    Nothing is opened or followed here: a named path is kept whatever it is, and a folder entry
    is kept unless it is a folder, so that a missing file, a broken link or a FIFO each get
    their own one-line error from :func:`check_input` when their turn comes.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            try:
                entries = sorted(path.iterdir())
            except OSError:
                files.append(path)  # check_input reports it (an unreadable folder)
                continue
            files.extend(
                p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
            )
        else:
            files.append(path)
    return files


def check_input(path: Path) -> os.stat_result:
    """The ``stat`` of ``path`` if it is a readable regular file (links followed), else a
    one-line ``ImageError`` naming it: missing, broken or looping link, FIFO, device, socket,
    folder or unreadable. Only ``stat`` is used, so nothing that could block is opened."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageError(f"{path}: symbolic link loop") from None
        if e.errno == errno.ENOENT:
            if os.path.lexists(path):
                raise ImageError(f"{path}: broken symbolic link (its target is missing)") from None
            raise ImageError(f"{path}: no such file") from None
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is not None:
        raise ImageError(f"{path}: is {kind}, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise ImageError(f"{path}: cannot read (permission denied)")
    return st


def output_path(source: Path, out_dir: Path, suffix: str | None = None) -> Path:
    """``out_dir/<source stem><suffix>``; the suffix defaults to the source's own (``.jpg``
    for a source that cannot be written in its own format, such as HEIC)."""
    if suffix is None:
        suffix = source.suffix if source.suffix.lower() in WRITABLE_SUFFIXES else ".jpg"
    return Path(out_dir) / (source.stem + suffix)
