"""Options shared by the commands that run engines and find faces."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from meiyan.face import DEFAULT_MIN_FACE


def engine_option(slot: str, help: str) -> Callable[[Callable], Callable]:
    """``--engine`` with the choices of the slot ``slot`` (``auto`` and its engines)."""
    from meiyan import engines

    # Importing the job's module registers the slot's engines.
    choices = engines.slot(slot).choices()
    return click.option(
        "--engine", type=click.Choice(choices), default="auto", show_default=True, help=help
    )


def min_face_option(fn: Callable) -> Callable:
    """``--min-face``: the smallest face searched for (smaller is slower: tiles are scanned)."""
    return click.option(
        "--min-face",
        type=click.FloatRange(0.0, 1.0, min_open=True),
        default=DEFAULT_MIN_FACE,
        show_default=True,
        help="Smallest face searched for, as a share of the long side; smaller is slower.",
    )(fn)


def _set_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    os.environ["MEIYAN_DEVICE"] = value
    return value


def device_option(fn: Callable) -> Callable:
    """``--device cpu|cuda|auto`` for the ONNX models the command runs."""
    from meiyan.models import DEVICES

    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default="cpu",
        show_default=True,
        expose_value=False,
        callback=_set_device,
        help="Where ONNX models run; auto takes CUDA when onnxruntime has it.",
    )(fn)


def weights_option(fn: Callable) -> Callable:
    """``--weights PATH``: an ONNX file for the chosen network engine."""
    return click.option(
        "--weights",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="ONNX weights for the chosen network engine, instead of the registered model.",
    )(fn)
