"""The registry of training tasks: ``meiyan train NAME`` and ``meiyan export NAME``.

Each entry names the module and class of a :class:`meiyan.train.trainer.Task`; the module is
imported (with torch) only when the task is used, so the CLI starts without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meiyan.train.trainer import Task

TASKS: dict[str, str] = {
    "abpn": "meiyan.train.tasks.abpn:AbpnTask",
    "skin-unet": "meiyan.train.tasks.skin_unet:SkinUNetTask",
    "sc-fegan": "meiyan.train.tasks.sc_fegan:SCFEGANTask",
    "psgan": "meiyan.train.tasks.psgan:PSGANTask",
}


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name``."""
    from meiyan.errors import ModelError

    if name not in TASKS:
        raise ModelError(f"unknown training task {name!r}; known: {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(import_module(module), cls)
