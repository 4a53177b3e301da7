"""Export of a skin U-Net checkpoint to ONNX, checked against torch.

Uses torch's TorchScript-based exporter (``dynamo=False``), which needs the ``onnx`` package and
nothing else, and works offline. Batch, height and width are dynamic; the training input size
and framing are stored in the model's metadata for :mod:`meiyan.skin.unet_onnx`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from meiyan.errors import ModelError
from meiyan.train.train_skin_unet import load_model

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "skin"


def export_skin_unet(checkpoint: Path, output: Path, *, check_batch: int = 2) -> float:
    """Write ``checkpoint``'s model to ``output`` (ONNX); returns max |onnx - torch| on noise."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise ModelError("ONNX export needs the onnx and onnxruntime packages") from e
    model, size = load_model(checkpoint)
    dummy = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    output.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs only `onnx`, offline.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (dummy,), str(output), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
        )
    proto = onnx.load(str(output))
    meta = {"meiyan.model": "skin-unet", "meiyan.input_size": str(size),
            "meiyan.width": str(model.width), "meiyan.framing": "square-window/1"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "meiyan skin U-Net: (N, 3, H, W) RGB in [0, 1] to (N, 1, H, W) skin"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))

    x = torch.rand(check_batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    return float(np.abs(got - expected).max())
