"""A general trainer for meiyan's networks: one loop for every :class:`Task`.

A task owns its networks, optimisers, data, one training step, its validation and its ONNX
export; the trainer owns everything around them: the device, a seeded
:class:`torch.utils.data.DataLoader` with worker processes, mixed precision on CUDA
(``torch.autocast`` with a ``GradScaler``; P. Micikevicius et al., "Mixed Precision Training",
ICLR 2018), a checkpoint after every epoch (``last.pt``) and at the best validation score
(``best.pt``), exact ``resume``, a progress bar with the running losses, a JSON-lines log
(``log.jsonl``, one record per epoch) and data-parallel training on several GPUs when launched by
``torchrun`` (``WORLD_SIZE`` > 1: one process per GPU, networks wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`, a :class:`DistributedSampler`, rank 0 alone
validating and writing).

Checkpoints hold tensors and plain containers only, and are read with
``torch.load(..., weights_only=True)``. Random choices in data loading depend on (seed, epoch,
sample index) only (:class:`EpochDataset`), so a run repeats exactly on CPU whatever the number
of workers, and a resumed run continues as if it had not stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from meiyan.errors import ModelError

CHECKPOINT_FORMAT = "meiyan-train/1"
DEVICES = ("auto", "cpu", "cuda")
POSTFIX_EVERY = 10
"""Steps between progress-bar updates (each one reads the running losses off the device)."""


def runs_dir() -> Path:
    """Parent of the default run folders: ``$XDG_CACHE_HOME/meiyan/runs`` or
    ``~/.cache/meiyan/runs``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "meiyan" / "runs"


def data_dir() -> Path:
    """Where tasks cache their prepared data: ``meiyan/data`` beside :func:`runs_dir`."""
    return runs_dir().parent / "data"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"cpu"``, ``"cuda"`` (GPU ``local_rank``) or ``"auto"`` (CUDA when present)."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device cuda asked for, but torch {torch.__version__} sees no CUDA GPU")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python and NumPy from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The data-order seed of epoch ``epoch`` in a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states as tensors and plain containers."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically (a partial file never replaces a good one)."""
    tmp = path.with_suffix(".tmp")
    torch.save(dict(state), tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, task: str | None = None) -> dict[str, Any]:
    """A trainer checkpoint (``weights_only=True``), checked for its format and ``task``."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot read checkpoint {path}: {reason}") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path} is not a meiyan training checkpoint")
    if task is not None and state["task"] != task:
        raise ModelError(f"{path} is a {state['task']} checkpoint, not {task}")
    return state


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or ``module`` itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


@dataclass
class TrainerConfig:
    """What the trainer needs besides the task (``meiyan train TASK`` options)."""

    out: str | None = None
    """Run folder; ``None``: ``runs_dir() / task.name``."""
    epochs: int = 100
    batch: int = 8
    """Batch size per process (under ``torchrun``, per GPU)."""
    workers: int = 2
    """DataLoader worker processes (0: load in the training process)."""
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    """torch CPU threads (``None``: torch's choice)."""
    resume: bool = False
    amp: bool = True
    """Mixed precision where it applies (CUDA only)."""

    def validate(self) -> None:
        """Raise ``ValueError`` for options outside their range."""
        if self.epochs < 1 or self.batch < 1:
            raise ValueError("epochs and batch must be at least 1")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {self.workers}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")


class EpochDataset(Dataset):
    """A map-style dataset whose random choices depend on (seed, epoch, index) alone.

    Subclasses draw every random number of ``__getitem__(index)`` from ``self.rng(index)``; the
    trainer calls :meth:`set_epoch` before each epoch, so the samples do not depend on the
    number of workers, on which worker loads them, or on a resume.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next epoch's random choices those of ``epoch``."""
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])


class Task(ABC):
    """One network family's recipe, run by :class:`Trainer`.

    Before training, the trainer sets ``nets`` (from :meth:`build_networks`, on the device),
    ``optimizers`` and ``schedulers`` (from :meth:`build_optimizers`), ``train_nets`` (the same
    networks, wrapped in DistributedDataParallel under ``torchrun``), ``device``, ``seed`` (the
    run's, for the data split and :class:`EpochDataset`), ``amp`` and ``scaler``; then it calls
    :meth:`datasets`. :meth:`train_step` calls ``train_nets`` inside :meth:`autocast` and steps
    every optimiser it uses with :meth:`optimize` (the trainer updates the scaler after each
    step); :meth:`validate` and :meth:`export` use ``nets``.

    Under DistributedDataParallel each network's forward must be followed by one backward: feed
    a discriminator real and fake samples in one batch. A gradient penalty under mixed precision
    differentiates ``self.scaler.scale(output)`` and divides the gradients by
    ``self.scaler.get_scale()`` (PyTorch's AMP recipe).
    """

    name: ClassVar[str]
    """Registry name, as in ``meiyan train NAME`` and the checkpoints."""
    best_mode: ClassVar[str] = "max"
    """``"max"`` or ``"min"``: whether a larger :attr:`best_metric` is better."""
    scheduler_interval: ClassVar[str] = "epoch"
    """``"epoch"`` or ``"step"``: when the trainer steps every scheduler."""
    find_unused_parameters: ClassVar[bool] = False
    """Passed to DistributedDataParallel (True when a step leaves some parameters unused)."""

    def __init__(self) -> None:
        self.nets: dict[str, nn.Module] = {}
        self.train_nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.device = torch.device("cpu")
        self.seed = 0
        self.amp = False
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)

    @property
    @abstractmethod
    def best_metric(self) -> str:
        """Key of the epoch's losses or metrics that chooses ``best.pt``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The task's options as a plain dict (stored in checkpoints, JSON-able)."""

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Task:
        """The task of a checkpoint's ``config``."""

    @abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """Freshly initialised networks by name (called once torch is seeded)."""

    @abstractmethod
    def build_optimizers(
        self, epochs: int
    ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LRScheduler]]:
        """Optimisers and learning-rate schedulers by name, over ``self.nets``' parameters."""

    @abstractmethod
    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """Training and validation sets (validation ``None``: none)."""

    @abstractmethod
    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One optimisation step; returns scalar tensors (losses, training metrics) to average."""

    @abstractmethod
    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Metrics over the validation loader (networks in eval mode, gradients off)."""

    @abstractmethod
    def export(self, path: Path) -> float:
        """Write the trained network to ONNX at ``path``; returns max |onnx - torch|."""

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision (float16) for forward passes when ``amp`` is on, else nothing."""
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def optimize(self, loss: torch.Tensor, optimizer: str) -> None:
        """Zero ``optimizer``'s gradients, back-propagate ``loss`` (scaled) and step it."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def to_device(self, batch: Any) -> Any:
        """``batch`` (tensors in tuples, lists or dicts) on the task's device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, Mapping):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(v) for v in batch)
        return batch


def compact_checkpoint(path: str | Path, out: str | Path, task: str | None = None) -> Path:
    """A float16 copy of checkpoint ``path``'s networks at ``out``, without optimiser state
    (config and history kept): small enough to carry, still read by ``load_task`` and
    ``meiyan export``."""
    state = load_checkpoint(path, task)
    small = {k: state[k] for k in ("format", "task", "config", "trainer", "epoch", "best",
                                   "history")}
    small["networks"] = {name: {k: v.half() if v.is_floating_point() else v
                                for k, v in net.items()}
                         for name, net in state["networks"].items()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, small)
    return Path(out)


def load_task(path: str | Path, task: str | None = None) -> Task:
    """The task of checkpoint ``path`` with its trained networks (CPU, eval mode)."""
    from meiyan.train.tasks import task_class

    state = load_checkpoint(path, task)
    result = task_class(state["task"]).from_config(state["config"])
    result.nets = result.build_networks()
    for name, net in result.nets.items():
        net.load_state_dict(state["networks"][name])
        net.eval()
    return result


@dataclass(frozen=True)
class _Processes:
    world: int
    rank: int
    local_rank: int

    @classmethod
    def from_env(cls) -> _Processes:
        env = os.environ
        return cls(int(env.get("WORLD_SIZE", 1)), int(env.get("RANK", 0)),
                   int(env.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0


class Trainer:
    """Runs a :class:`Task` as configured by a :class:`TrainerConfig`."""

    def __init__(self, task: Task, config: TrainerConfig) -> None:
        self.task = task
        self.cfg = config
        self.out = Path(config.out) if config.out else runs_dir() / task.name

    def fit(self, progress: bool = True) -> dict[str, Any]:
        """Train; returns ``{"task", "out", "config", "history", "best"}``.

        Seeds everything from ``seed`` and switches torch to deterministic algorithms for the
        run (restored afterwards, with the thread count).
        """
        self.cfg.validate()
        procs = _Processes.from_env()
        device = resolve_device(self.cfg.device, procs.local_rank)
        own_group = procs.world > 1 and not dist.is_initialized()
        if own_group:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            summary = self._fit(procs, device, progress)
            if procs.world > 1:
                dist.barrier()  # rank 0 validates and writes while the others wait
            return summary
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
            if own_group:
                dist.destroy_process_group()

    def _setup(self, procs: _Processes, device: torch.device) -> None:
        task, cfg = self.task, self.cfg
        task.device, task.seed = device, cfg.seed
        task.amp = cfg.amp and device.type == "cuda"
        task.scaler = torch.amp.GradScaler(device.type, enabled=task.amp)
        nets = task.build_networks()
        if procs.world > 1 and device.type == "cuda":
            nets = {k: nn.SyncBatchNorm.convert_sync_batchnorm(v) for k, v in nets.items()}
        task.nets = {k: v.to(device) for k, v in nets.items()}
        task.optimizers, task.schedulers = task.build_optimizers(cfg.epochs)
        if procs.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            task.train_nets = {
                k: DistributedDataParallel(v, device_ids=ids,
                                           find_unused_parameters=task.find_unused_parameters)
                for k, v in task.nets.items()
            }
        else:
            task.train_nets = dict(task.nets)

    def _restore(self, state: Mapping[str, Any]) -> None:
        task = self.task
        for group, objects in (("networks", task.nets), ("optimizers", task.optimizers),
                               ("schedulers", task.schedulers)):
            for name, obj in objects.items():
                obj.load_state_dict(state[group][name])
        if state["scaler"] and task.amp:
            task.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])

    def _state(self, epoch: int, history: list[dict], best: dict | None) -> dict[str, Any]:
        task = self.task
        return {
            "format": CHECKPOINT_FORMAT, "task": task.name, "config": task.config(),
            "trainer": asdict(self.cfg), "epoch": epoch,
            "networks": {k: v.state_dict() for k, v in task.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in task.schedulers.items()},
            "scaler": task.scaler.state_dict(), "rng": rng_state(), "best": best,
            "history": history,
        }

    def _loaders(
        self, procs: _Processes, device: torch.device
    ) -> tuple[Dataset, DataLoader, DistributedSampler | None, DataLoader | None, torch.Generator]:
        cfg = self.cfg
        train_set, val_set = self.task.datasets()
        generator = torch.Generator()
        sampler = (DistributedSampler(train_set, procs.world, procs.rank, shuffle=True,
                                      seed=cfg.seed) if procs.world > 1 else None)
        common = {"batch_size": cfg.batch, "num_workers": cfg.workers,
                  "worker_init_fn": seed_worker, "pin_memory": device.type == "cuda"}
        loader = DataLoader(train_set, shuffle=sampler is None, sampler=sampler,
                            generator=generator, **common)
        val_loader = None
        if val_set is not None and len(val_set) and procs.main:
            val_loader = DataLoader(val_set, shuffle=False,
                                    generator=torch.Generator().manual_seed(cfg.seed), **common)
        return train_set, loader, sampler, val_loader, generator

    def _fit(self, procs: _Processes, device: torch.device, progress: bool) -> dict[str, Any]:
        task, cfg, out = self.task, self.cfg, self.out
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.seed)
        self._setup(procs, device)
        train_set, loader, sampler, val_loader, generator = self._loaders(procs, device)

        history: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        start = 0
        last, log = out / "last.pt", out / "log.jsonl"
        if cfg.resume:
            if not last.is_file():
                raise ModelError(f"--resume: no checkpoint at {last}")
            state = load_checkpoint(last, task.name)
            now = {**task.config(), "seed": cfg.seed}
            then = {**state["config"], "seed": state["trainer"]["seed"]}
            changed = sorted(k for k in now if then.get(k) != now[k])
            if changed:
                raise ModelError(f"{last} was trained with other options: {', '.join(changed)}")
            self._restore(state)
            history, best, start = state["history"], state["best"], state["epoch"]
        if procs.main:
            out.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(json.dumps(row) + "\n" for row in history))

        for epoch in range(start, cfg.epochs):
            began = time.perf_counter()
            for net in task.train_nets.values():
                net.train()
            if isinstance(train_set, EpochDataset):
                train_set.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            generator.manual_seed(epoch_seed(cfg.seed, epoch))
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                       disable=not (progress and procs.main), leave=False)
            losses = self._train_epoch(bar, procs)
            lr = {k: float(opt.param_groups[0]["lr"]) for k, opt in task.optimizers.items()}
            if task.scheduler_interval == "epoch":
                for scheduler in task.schedulers.values():
                    scheduler.step()
            metrics: dict[str, float] = {}
            if val_loader is not None:
                for net in task.nets.values():
                    net.eval()
                with torch.no_grad():
                    metrics = task.validate(val_loader)
            row = {"epoch": epoch + 1, "losses": losses, "metrics": metrics,
                   "seconds": round(time.perf_counter() - began, 3), "lr": lr}
            history.append(row)
            if not procs.main:
                continue
            score = {**losses, **metrics}.get(task.best_metric)
            if score is None:
                raise ModelError(f"{task.name}: no {task.best_metric!r} among the losses and "
                                 f"metrics {sorted({**losses, **metrics})}")
            improved = best is None or (score > best["value"] if task.best_mode == "max"
                                        else score < best["value"])
            if improved:
                best = {"metric": task.best_metric, "value": score, "epoch": epoch + 1}
            save_checkpoint(last, self._state(epoch + 1, history, best))
            if improved:
                shutil.copyfile(last, out / "best.pt")
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            if progress:
                shown = " ".join(f"{k}={v:.4f}" for k, v in {**losses, **metrics}.items())
                tqdm.write(f"epoch {epoch + 1}: {shown} ({row['seconds']:.0f} s)"
                           f"{' *' if improved else ''}")
        return {"task": task.name, "out": str(out), "config": task.config(),
                "history": history, "best": best}

    def _train_epoch(self, bar: tqdm, procs: _Processes) -> dict[str, float]:
        """Run one epoch's steps; mean of each returned value over the steps (and processes)."""
        task = self.task
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for batch in bar:
            values = task.train_step(batch)
            task.scaler.update()
            if task.scheduler_interval == "step":
                for scheduler in task.schedulers.values():
                    scheduler.step()
            for k, v in values.items():
                sums[k] = sums[k] + v.detach().double() if k in sums else v.detach().double()
            steps += 1
            if not bar.disable and (steps in (1, bar.total) or steps % POSTFIX_EVERY == 0):
                bar.set_postfix({k: f"{s.item() / steps:.4f}" for k, s in sums.items()})
        if not sums:
            return {}
        means = torch.stack(list(sums.values())) / steps
        if procs.world > 1:
            dist.all_reduce(means)
            means /= procs.world
        return dict(zip(sums, means.tolist(), strict=True))
