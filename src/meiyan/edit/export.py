"""Export of an SC-FEGAN generator (Jo and Park, ICCV 2019) to ONNX, checked against torch.

Uses torch's TorchScript-based exporter (``dynamo=False``, offline, needs only ``onnx``). Batch,
height and width are dynamic (height and width multiples of 128); the working size, width and
source are stored in the model's metadata for :mod:`meiyan.edit.api`. The ONNX model maps the
9-channel input (RGB order) to the generator's raw RGB output in [-1, 1]; the caller composites.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from meiyan.edit.network import IN_CHANNELS, SCFEGANGenerator
from meiyan.errors import ModelError

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "generated"
MODEL_NAME = "sc-fegan"


def export_generator(model: SCFEGANGenerator, output: Path, *, size: int = 512,
                     source: str = "meiyan") -> float:
    """Write ``model`` to ``output`` (ONNX); returns max |onnx - torch| on a random input."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise ModelError("ONNX export needs the onnx and onnxruntime packages") from e
    model = model.eval()
    gen = torch.Generator().manual_seed(0)
    dummy = torch.rand(1, IN_CHANNELS, size, size, generator=gen) * 2 - 1
    output.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs only `onnx`, offline.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Tracing notes about constant shapes and un-folded slices: the checks below verify.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        torch.onnx.export(
            model, (dummy,), str(output), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
        )
    proto = onnx.load(str(output))
    meta = {"meiyan.model": MODEL_NAME, "meiyan.input_size": str(size),
            "meiyan.width": str(model.width), "meiyan.source": source,
            "meiyan.channels": "RGB"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = ("meiyan SC-FEGAN generator: (N, 9, H, W) erased RGB, sketch, colour, "
                        "mask, noise in [-1, 1] to (N, 3, H, W) RGB in [-1, 1]")
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))

    with torch.no_grad():
        expected = model(dummy).numpy()
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: dummy.numpy()})[0]
    return float(np.abs(got - expected).max())
