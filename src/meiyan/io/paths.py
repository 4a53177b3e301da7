"""Expanding command-line inputs into image files, and naming outputs after them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from meiyan.errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".jfif"}
)


def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the image files of each folder (not recursive, sorted by name).

    A named file is kept whatever its suffix, so that a non-image gets its own clear error when
    read; a path that does not exist raises ``ImageError`` naming it.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(
                    p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        elif path.exists():
            files.append(path)
        else:
            raise ImageError(f"{path}: no such file or folder")
    return files


def output_path(source: Path, out_dir: Path, suffix: str | None = None) -> Path:
    """``out_dir/<source stem><suffix>``; the suffix defaults to the source's own."""
    return Path(out_dir) / (source.stem + (source.suffix if suffix is None else suffix))
