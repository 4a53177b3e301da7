"""Engine slots: every stage that a learned network can take over, one registry per stage.

A slot (skin segmentation, retouching, makeup transfer, face editing) holds named engines. An
engine is made by a factory on first use and kept; it is a callable whose signature the slot
defines (``(image, faces, settings) -> result``). Every slot has a ``classic`` engine that needs
no model file. ``auto`` means one thing everywhere: the engine with the best score on the slot's
benchmark among those that meet the job's speed budget and can run here (their model files are
installed and, with ``MEIYAN_COMMERCIAL=1``, their terms allow commercial use); when the best
one cannot run, the next one is taken, and the fall-back is said once per process as a warning.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meiyan.errors import MeiyanError, ModelError

AUTO = "auto"
CLASSIC = "classic"


class EngineWarning(UserWarning):
    """``auto`` could not take the best engine of a slot and fell back to another one."""


class EngineError(MeiyanError, ValueError):
    """An engine was asked for that does not exist, cannot run here, or cannot honour an
    option."""


def commercial_only() -> bool:
    """Whether ``MEIYAN_COMMERCIAL=1`` restricts ``auto`` to models whose terms allow
    commercial use."""
    return os.environ.get("MEIYAN_COMMERCIAL", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class EngineSpec:
    """One engine of a slot.

    ``factory`` makes the engine (called once; it may load models); ``models`` names the files
    of :mod:`meiyan.models` it needs; ``score`` is its figure on the slot's benchmark (higher is
    better; ``None``: not ranked, never chosen by ``auto``); ``jobs``: the jobs whose default
    speed budget it meets (``None``: every job).
    """

    name: str
    factory: Callable[[], Any]
    models: tuple[str, ...] = ()
    score: float | None = None
    jobs: tuple[str, ...] | None = None
    description: str = ""


class Slot:
    """The engines of one stage, chosen by name or by ``auto``."""

    def __init__(self, name: str, benchmark: str) -> None:
        self.name = name
        self.benchmark = benchmark
        self._specs: dict[str, EngineSpec] = {}
        self._instances: dict[str, Any] = {}
        self._warned: set[str] = set()
        self._lock = threading.RLock()

    def register(
        self,
        name: str,
        factory: Callable[[], Any],
        *,
        models: Sequence[str] = (),
        score: float | None = None,
        jobs: Sequence[str] | None = None,
        description: str = "",
    ) -> None:
        """Add (or replace) the engine ``name``; ``auto`` is reserved."""
        if name == AUTO:
            raise ValueError(f"{AUTO!r} is not an engine name: it picks one")
        spec = EngineSpec(
            name, factory, tuple(models), score, None if jobs is None else tuple(jobs), description
        )
        with self._lock:
            self._specs[name] = spec
            self._instances.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove the engine ``name`` (tests restore what they change with this)."""
        with self._lock:
            self._specs.pop(name, None)
            self._instances.pop(name, None)

    def spec(self, name: str) -> EngineSpec:
        if name not in self._specs:
            raise EngineError(
                f"unknown {self.name} engine {name!r}; choose one of {self.choices()}"
            )
        return self._specs[name]

    def names(self) -> list[str]:
        """The registered engines (``auto`` not included)."""
        return sorted(self._specs)

    def choices(self) -> list[str]:
        """What a user may ask for: ``auto`` and every engine."""
        return [AUTO, *self.names()]

    def unavailable(self, name: str) -> str | None:
        """Why the engine ``name`` cannot run here (a missing model, forbidden terms), or
        ``None`` if it can."""
        from meiyan.models import registry

        spec = self.spec(name)
        for model in spec.models:
            reason = registry.unavailable(model)
            if reason:
                return reason
            if commercial_only() and not registry.get_spec(model).commercial:
                return f"model {model!r} does not allow commercial use (MEIYAN_COMMERCIAL=1)"
        return None

    def ranking(self, job: str | None = None) -> list[str]:
        """Engines ``auto`` may take for ``job``, best first: ranked by score, among those
        within the job's speed budget."""
        ranked = [
            s
            for s in self._specs.values()
            if s.score is not None and (job is None or s.jobs is None or job in s.jobs)
        ]
        return [s.name for s in sorted(ranked, key=lambda s: -float(s.score or 0.0))]

    def resolve(self, name: str, job: str | None = None) -> str:
        """The engine that ``name`` stands for: itself, or ``auto``'s choice for ``job``."""
        if name != AUTO:
            self.spec(name)
            return name
        ranking = self.ranking(job) or [CLASSIC]
        for i, candidate in enumerate(ranking):
            reason = self.unavailable(candidate)
            if reason is None:
                if i > 0:
                    self._warn_once(ranking[0], candidate, self.unavailable(ranking[0]) or "")
                return candidate
        fallback = CLASSIC if CLASSIC in self._specs else ranking[-1]
        self._warn_once(ranking[0], fallback, self.unavailable(ranking[0]) or "")
        return fallback

    def _warn_once(self, best: str, taken: str, reason: str) -> None:
        with self._lock:
            if best in self._warned:
                return
            self._warned.add(best)
        warnings.warn(
            f"{self.name} engine auto: {best!r} cannot run ({reason}); using {taken!r}",
            EngineWarning,
            stacklevel=4,
        )

    def get(self, name: str = AUTO, *, job: str | None = None) -> Any:
        """The engine ``name`` (or ``auto``'s choice for ``job``), made on first use and kept."""
        chosen = self.resolve(name, job)
        if name != AUTO:
            reason = self.unavailable(chosen)
            if reason:
                raise EngineError(f"{self.name} engine {chosen!r} cannot run: {reason}")
        with self._lock:
            if chosen not in self._instances:
                try:
                    self._instances[chosen] = self._specs[chosen].factory()
                except ModelError as e:
                    raise EngineError(f"{self.name} engine {chosen!r}: {e}") from e
            return self._instances[chosen]

    def reset_warnings(self) -> None:
        """Forget which fall-backs were warned about (for tests)."""
        with self._lock:
            self._warned.clear()


_slots: dict[str, Slot] = {}


def slot(name: str, benchmark: str = "") -> Slot:
    """The slot ``name``, created on first mention (``benchmark`` names the script ranking it)."""
    if name not in _slots:
        _slots[name] = Slot(name, benchmark)
    elif benchmark and not _slots[name].benchmark:
        _slots[name].benchmark = benchmark
    return _slots[name]


__all__ = [
    "AUTO",
    "CLASSIC",
    "EngineError",
    "EngineSpec",
    "EngineWarning",
    "Slot",
    "commercial_only",
    "slot",
]
