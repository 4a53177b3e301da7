"""ONNX export of a trained network, checked against torch (used by every task's ``export``).

Uses torch's TorchScript-based exporter (``dynamo=False``), which needs the ``onnx`` package and
nothing else, and works offline. The task names the dynamic axes and the metadata that its
inference side reads (input size, framing, width ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meiyan.errors import ModelError

OPSET = 17


def export_onnx(
    model: nn.Module,
    path: Path,
    example: Mapping[str, torch.Tensor],
    check: Mapping[str, torch.Tensor],
    output_names: Sequence[str],
    *,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    metadata: Mapping[str, str] | None = None,
    doc: str = "",
) -> float:
    """Write ``model`` (eval mode, inputs named as ``example``'s keys) to ``path``.

    Returns max |onnx - torch| over every output on the inputs ``check`` (run by onnxruntime on
    the CPU).
    """
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise ModelError("ONNX export needs the onnx and onnxruntime packages") from e
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs only `onnx`, offline.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, tuple(example.values()), str(path), dynamo=False, opset_version=OPSET,
            input_names=list(example), output_names=list(output_names),
            dynamic_axes=dict(dynamic_axes or {}),
        )
    proto = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = doc
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))

    with torch.no_grad():
        expected = model(*check.values())
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(output_names), {k: v.numpy() for k, v in check.items()})
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
