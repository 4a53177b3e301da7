"""Running one command over many inputs: checks, output names, workers, signals, exit code.

Each input is checked on its turn (``stat`` only: missing, broken link, FIFO... get one line and
are skipped), outputs that would land on one of this run's inputs or on another input's output
are refused before anything is written, warnings and errors are printed one line each above the
progress bar, and SIGTERM/SIGHUP stop the batch like Ctrl-C: the file being written is removed,
finished files stay, exit code 130.

With ``--jobs N`` (N > 1) the photos go to N worker processes, each on one thread, forked from
this process when the batch starts; reports keep the input order. Forking is safe only while
this process runs no MediaPipe graph and no thread pool (their threads do not survive a fork),
so where it does (a makeup reference was analysed first, or in a test process) the batch runs
in this process as with ``--jobs 1``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
from tqdm import tqdm

from meiyan.errors import MeiyanError
from meiyan.io.atomic import remove_partial, write_file
from meiyan.io.image import write_image
from meiyan.io.paths import check_input, collect_inputs, output_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
Job = Callable[[Path], None]
T = TypeVar("T")


class BatchWarning(UserWarning):
    """A note about one input, printed as ``meiyan: warning: FILE: message``."""


def warn(message: str) -> None:
    """Report ``message`` about the current input (the batch adds the file name)."""
    warnings.warn(message, BatchWarning, stacklevel=2)


def _native_thread_names() -> list[str] | None:
    """The names of this process's native threads (Linux), ``None`` where unknown."""
    names = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
    return names


def _option(name: str, default: object = None) -> object:
    """An output or batch option (``--format``, ``--quality``, ``--jobs``) of the running
    command, as stored by :mod:`meiyan.cli.options`; ``default`` outside a command."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(f"meiyan.{name}", default) if ctx is not None else default


@dataclass(frozen=True)
class Output:
    """Where and how a command writes: ``OUT/<stem><tag><suffix>`` for each product.

    A product's suffix ``None`` means the image format (``--format``, else the input's own);
    ``--format`` also replaces a command's fixed image suffix, never ``.json``.
    """

    folder: Path
    overwrite: bool = False
    products: tuple[tuple[str, str | None], ...] = (("", None),)
    format: str | None = None
    quality: int | None = None

    @classmethod
    def of(cls, folder: Path, overwrite: bool, *products: tuple[str, str | None]) -> Output:
        """The outputs of the running command, with its ``--format`` and ``--quality``."""
        return cls(
            Path(folder),
            overwrite,
            tuple(products) or (("", None),),
            _option("format"),  # type: ignore[arg-type]
            _option("quality"),  # type: ignore[arg-type]
        )

    def path(self, source: Path, tag: str = "", suffix: str | None = None) -> Path:
        """The file written for ``source`` with ``tag`` and ``suffix``."""
        if suffix != ".json" and self.format is not None:
            suffix = self.format
        if suffix is None:
            suffix = output_path(source, self.folder).suffix
        return output_path(source, self.folder, tag + suffix)

    def paths(self, source: Path) -> list[Path]:
        """Every file written for ``source``."""
        return [self.path(source, tag, suffix) for tag, suffix in self.products]

    def image(self, source: Path, pixels: object, *, tag: str = "", suffix: str | None = None,
              **kwargs: object) -> Path:  # fmt: skip
        """Write an image product of ``source`` (``kwargs``: ``like``, ``alpha``)."""
        return write_image(
            self.path(source, tag, suffix),
            pixels,  # type: ignore[arg-type]
            overwrite=self.overwrite,
            quality=self.quality,
            **kwargs,  # type: ignore[arg-type]
        )

    def text(self, source: Path, text: str, *, tag: str = "", suffix: str = ".json") -> Path:
        """Write a text product of ``source`` (UTF-8), atomically like images."""
        return write_file(self.path(source, tag, suffix), text.encode(), overwrite=self.overwrite)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _plan(files: Sequence[Path], output: Output | None) -> dict[Path, str]:
    """One-line refusals, by input, for outputs that would land on one of this run's inputs
    (even with ``--overwrite``) or that two inputs would both write (both are skipped)."""
    if output is None:
        return {}
    inputs = {_key(p) for p in files}
    identities = set()
    for p in files:
        with contextlib.suppress(OSError):
            st = os.stat(p)
            identities.add((st.st_dev, st.st_ino))
    writers: dict[str, list[tuple[Path, Path]]] = {}
    refused: dict[Path, str] = {}
    for source in files:
        for target in output.paths(source):
            try:
                st = os.stat(target)
                same = (st.st_dev, st.st_ino) in identities
            except OSError:
                same = False
            if same or _key(target) in inputs:
                refused.setdefault(
                    source,
                    f"{source}: its output {target} is one of this run's inputs; skipped "
                    "(never written over, even with --overwrite)",
                )
            writers.setdefault(_key(target), []).append((source, target))
    for claims in writers.values():
        if len({s for s, _ in claims}) > 1:
            for source, target in claims:
                others = ", ".join(str(s) for s, _ in claims if s != source)
                refused.setdefault(
                    source,
                    f"{source}: its output {target} would also be written for {others}; skipped",
                )
    return refused


def _one(job: Job, path: Path) -> tuple[list[str], str | None]:
    """Run ``job`` on ``path``: its warnings, and its error line or ``None``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = None
        try:
            check_input(path)
            job(path)
        except MeiyanError as e:
            error = str(e)
        except MemoryError:
            error = f"{path}: out of memory"
        except OSError as e:
            error = f"{getattr(e, 'filename', None) or path}: {e.strerror or e}"
    notes = []
    for w in caught:
        text = " ".join(str(w.message).split())
        notes.append(text if text.startswith(f"{path}:") else f"{path}: {text}")
    return notes, error


class _Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised where the process was so that cleanups run."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise _Interrupted(signum)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise like SIGINT while the batch runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    saved = {name: signal.signal(getattr(signal, name), _raise_interrupted) for name in names}
    try:
        yield
    finally:
        for name, handler in saved.items():
            signal.signal(getattr(signal, name), handler)


# --------------------------------------------------------------------------- worker processes

_job: Job | None = None
_busy = False


def _worker_signal(signum: int, frame: object) -> None:
    if _busy:
        raise _Interrupted(signum)  # unwinds the write in progress, which removes its file
    remove_partial()  # what an earlier interruption's unwinding may have left
    os._exit(EXIT_INTERRUPTED)


def _worker_init() -> None:
    """One thread per worker; interruptions clean up and end the worker quietly."""
    os.environ["MEIYAN_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _worker_signal)


def _work(path: Path) -> tuple[list[str], str | None]:
    global _busy
    assert _job is not None
    _busy = True
    try:
        return _one(_job, path)
    except (_Interrupted, KeyboardInterrupt):
        os._exit(EXIT_INTERRUPTED)
    finally:
        _busy = False


def _can_fork() -> bool:
    """Whether forking workers is safe here: on Linux, with no Python thread but this one (a
    thread pool would be dead in the children) and no MediaPipe graph (its threads, named
    ``mediapipe/N``, would be too). OpenCV's pool and onnxruntime sessions survive a fork."""
    names = _native_thread_names() if sys.platform.startswith("linux") else None
    return (
        names is not None
        and threading.active_count() == 1
        and not any(n.startswith("mediapipe") for n in names)
    )


def isolated(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a short-lived forked process when this command's batch will fork
    workers, so that the models ``fn`` starts (a makeup reference's face analysis) stay out
    of this process and the workers can still be forked; here otherwise. The result and any
    exception come back pickled (if the result cannot be pickled, ``fn`` runs here)."""
    if int(_option("jobs", 1)) <= 1 or not _can_fork():  # type: ignore[arg-type]
        return fn(*args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        try:
            return pool.submit(fn, *args).result()
        except (pickle.PicklingError, TypeError, AttributeError):
            pass  # the result could not come back: compute it here
    return fn(*args)


def default_jobs() -> int:
    """The CPU count available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def _outcomes(
    job: Job, paths: list[Path], jobs: int
) -> Iterator[Iterator[tuple[list[str], str | None]]]:
    """Each path's outcome, in order: from worker processes where possible, else from here.

    The workers are started on entry, before any other thread (the progress bar's) exists.
    """
    global _job
    if not (jobs > 1 and len(paths) > 1 and _can_fork()):
        yield (_one(job, path) for path in paths)
        return
    _job = job
    import multiprocessing  # imported here: a batch of one photo never needs it

    pool = multiprocessing.get_context("fork").Pool(min(jobs, len(paths)), _worker_init)
    try:
        yield pool.imap(_work, paths, chunksize=1)
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM to each worker: it removes the file it was writing
        raise
    finally:
        pool.join()
        _job = None


# --------------------------------------------------------------------------------- the batch


def run_batch(
    inputs: Iterable[str | Path],
    job: Job,
    *,
    desc: str,
    output: Output | None = None,
    jobs: int | None = None,
) -> int:
    """Call ``job`` on every input file; report each failure on one line and go on.

    ``output`` names what ``job`` writes for each input, so that collisions are refused before
    anything is written. ``jobs``: worker processes (default: the command's ``--jobs``, else 1).
    Returns the exit code: 0 when every file succeeded, 1 when any failed, 2 when there was
    nothing to do, 130 when interrupted (Ctrl-C, SIGTERM, SIGHUP). A progress bar is shown (on
    stderr) when there is more than one file.
    """
    inputs = [Path(p) for p in inputs]
    if inputs and not any(os.path.lexists(p) for p in inputs):
        for p in inputs:
            click.echo(f"meiyan: error: {p}: no such file or folder", err=True)
        return EXIT_USAGE
    unique: dict[str, Path] = {}
    for p in collect_inputs(inputs):
        unique.setdefault(_key(p), p)  # each file once, in order
    files = list(unique.values())
    if not files:
        click.echo("meiyan: error: no input images found", err=True)
        return EXIT_USAGE
    jobs = int(_option("jobs", 1) if jobs is None else jobs)  # type: ignore[arg-type]
    refused = _plan(files, output)
    todo = [p for p in files if p not in refused]
    failed = 0
    bar = None
    try:
        with _signals_interrupt(), _outcomes(job, todo, jobs) as outcomes:
            bar = tqdm(total=len(files), desc=desc, unit="img", disable=len(files) < 2)
            for path in files:
                notes, error = ([], refused[path]) if path in refused else next(outcomes)
                for note in notes:
                    tqdm.write(f"meiyan: warning: {note}", file=sys.stderr)
                if error is not None:
                    tqdm.write(f"meiyan: error: {error}", file=sys.stderr)
                    failed += 1
                bar.update()
    except (KeyboardInterrupt, _Interrupted):
        remove_partial()
        if bar is not None:
            bar.close()
        click.echo("meiyan: interrupted; finished files are kept", err=True)
        return EXIT_INTERRUPTED
    bar.close()
    if failed:
        click.echo(f"meiyan: {failed} of {len(files)} file(s) failed", err=True)
    return EXIT_FAILED if failed else EXIT_OK
