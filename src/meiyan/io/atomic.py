"""The one writer of every output file: complete or absent, never replacing without permission.

The data goes to a hidden temporary file in the target's folder, is flushed to disk, and then
takes the final name in one step: ``link`` (POSIX ``link(2)`` fails with ``EEXIST`` when the name
exists, so two runs can never both create it) or, with ``overwrite``, ``rename``. On file systems
without hard links the final name is created with ``O_CREAT | O_EXCL`` and written in place. Any
interruption (an exception, or a signal turned into one) removes what was being written.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
from pathlib import Path

from meiyan.errors import ImageError

_PARTIAL: set[Path] = set()
"""Temporary files this process is writing: what :func:`remove_partial` removes."""
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
_BINARY = getattr(os, "O_BINARY", 0)


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _exists_error(path: Path) -> ImageError:
    return ImageError(f"{path}: already exists (use --overwrite to replace it)")


def write_file(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically, creating its folder; returns ``path``.

    Without ``overwrite`` an existing ``path`` (even one created by another process a moment
    ago) is never replaced. Every failure is an ``ImageError`` naming ``path`` on one line.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageError(f"{path}: cannot create its folder ({_reason(e)})") from e
    if path.is_dir():
        raise ImageError(f"{path}: is a folder")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    made: Path | None = None
    try:
        # Signals are held while the file is created and recorded, so that an interruption
        # (a signal turned into an exception) always finds it recorded, and removes it.
        held = _hold_signals()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
            made = tmp
            _PARTIAL.add(tmp)
        finally:
            _release(held)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
            made = None
            _PARTIAL.discard(tmp)
            return path
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise _exists_error(path) from None
        except OSError as e:
            if e.errno not in _NO_LINKS:
                raise
            _exclusive_write(path, data)
        return path
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({_reason(e)})") from e
    finally:
        if made is not None:
            made.unlink(missing_ok=True)
            _PARTIAL.discard(made)


def remove_partial() -> None:
    """Remove every temporary file this process was still writing: for an interruption that
    came while ``write_file`` was already cleaning up (a handler may run between any two
    steps, so its own clean-up can be cut short)."""
    for tmp in list(_PARTIAL):
        tmp.unlink(missing_ok=True)
        _PARTIAL.discard(tmp)


_SIGNALS = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}


def _hold_signals() -> set[int] | None:
    """Block the interrupting signals in this thread; the previous mask (``None``: cannot)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def _release(held: set[int] | None) -> None:
    """Restore the mask :func:`_hold_signals` returned; a pending signal is delivered now."""
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _exclusive_write(path: Path, data: bytes) -> None:
    """Create ``path`` exclusively and write ``data`` into it; remove it if that fails."""
    held = _hold_signals()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
    except BaseException:
        _release(held)
        raise
    try:
        _release(held)  # a pending interruption now unwinds through the clean-up below
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
