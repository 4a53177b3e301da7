"""Fetching a model file from a URL or a local path, verified by its SHA-256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from meiyan.errors import ModelError

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | Path, sha256: str) -> None:
    """Raise :class:`ModelError` unless the file at ``path`` has the digest ``sha256``."""
    got = sha256_file(path)
    if got != sha256.lower():
        raise ModelError(f"{path}: SHA-256 {got} does not match the expected {sha256.lower()}")


def download(source: str, dest: str | Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Copy ``source`` (a URL, ``file://`` included, or a local path) to ``dest`` and verify it.

    The file is written beside ``dest`` under a temporary name and renamed only once its
    SHA-256 matches, so ``dest`` is never left holding a partial or wrong file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if "://" in source:
                import urllib.error  # imported on first use: urllib pulls in http and email
                import urllib.request

                try:
                    with urllib.request.urlopen(source, timeout=timeout) as response:
                        shutil.copyfileobj(response, out, _CHUNK)
                except (urllib.error.URLError, OSError, ValueError) as e:
                    raise ModelError(f"cannot download {source}: {e}") from e
            else:
                try:
                    with open(source, "rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)
                except OSError as e:
                    raise ModelError(f"cannot read {source}: {e}") from e
        verify(tmp, sha256)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
