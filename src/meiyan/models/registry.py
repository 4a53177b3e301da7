"""Registry of meiyan's model files: where each lives, its SHA-256 and where to fetch it.

A model is looked up first inside the package (weights shipped with meiyan), then in the user
cache (``$MEIYAN_MODELS``, else ``$XDG_CACHE_HOME/meiyan/models``, else
``~/.cache/meiyan/models``); a model that is in neither and has a URL is downloaded into the
cache and verified. Every file is checked against its SHA-256 once per process before use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from meiyan.errors import ModelError
from meiyan.models.download import download, verify

if TYPE_CHECKING:
    import onnxruntime

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelSpec:
    """A model file: ``filename`` with digest ``sha256``, optionally fetched from ``url``."""

    name: str
    filename: str
    sha256: str
    url: str | None = None
    card: str | None = None
    description: str = ""


_specs: dict[str, ModelSpec] = {}
_verified: set[tuple[str, int, int]] = set()


def register(spec: ModelSpec) -> None:
    """Add or replace ``spec`` under ``spec.name``."""
    _specs[spec.name] = spec


def names() -> list[str]:
    """Names of the registered models."""
    return sorted(_specs)


def get_spec(name: str) -> ModelSpec:
    """The registered spec ``name``."""
    if name not in _specs:
        raise ModelError(f"unknown model {name!r}; registered: {names()}")
    return _specs[name]


def cache_dir() -> Path:
    """Folder where downloaded models are kept."""
    if os.environ.get("MEIYAN_MODELS"):
        return Path(os.environ["MEIYAN_MODELS"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "meiyan" / "models"


def _checked(path: Path, sha256: str) -> Path:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        verify(path, sha256)
        _verified.add(key)
    return path


def model_path(name: str, *, allow_download: bool = True) -> Path:
    """Path of the verified file of model ``name``, downloading it if needed and allowed."""
    spec = get_spec(name)
    for folder in (PACKAGE_DIR, cache_dir()):
        candidate = folder / spec.filename
        if candidate.is_file():
            return _checked(candidate, spec.sha256)
    if spec.url is None:
        raise ModelError(f"model {name!r} ({spec.filename}) is not installed and has no URL")
    if not allow_download:
        raise ModelError(f"model {name!r} is not installed; downloads are disabled")
    return _checked(download(spec.url, cache_dir() / spec.filename, spec.sha256), spec.sha256)


@lru_cache(maxsize=8)
def _session(path: str, threads: int | None) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load ONNX model {path}: {e}") from e


def onnx_session(model: str | Path, threads: int | None = None) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for a registered model name or an ``.onnx`` path (cached)."""
    path = Path(model) if str(model).endswith(".onnx") else model_path(str(model))
    if not path.is_file():
        raise ModelError(f"no ONNX model at {path}")
    return _session(str(path.resolve()), threads)
