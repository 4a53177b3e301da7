"""The official SC-FEGAN checkpoint (Jo and Park, ICCV 2019; TensorFlow 1) in the PyTorch port.

The official generator's variables are ``generator/<layer>/kernel`` and ``.../bias`` for a gated
convolution's feature kernel, ``generator/<layer>_g/...`` for its gate, and
``generator/deconvN/w`` and ``biases1`` for a gated transposed convolution (``biases2`` exists
but the official graph never uses it). TensorFlow kernels are ``[kh, kw, in, out]`` (transposed
convolutions ``[kh, kw, out, in]``). The official input and output are BGR (OpenCV): the photo
and colour channels of the input, and the output channels, are reordered here so that the port
takes and gives RGB. The width is read from the checkpoint's first kernel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from meiyan.edit.bundle import CheckpointError, TensorBundle
from meiyan.edit.export import export_generator
from meiyan.edit.network import CNUM, GatedConv2d, GatedDeconv2d, SCFEGANGenerator

SCOPE = "generator"
# Official input channel of each port input channel: BGR photo, sketch, BGR colour, mask, noise.
INPUT_ORDER = (2, 1, 0, 3, 6, 5, 4, 7, 8)
BGR = (2, 1, 0)


def _conv(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # [kh,kw,in,out] -> [out,in,kh,kw]


def _official_tensors(bundle: TensorBundle, model: SCFEGANGenerator) -> dict[str, np.ndarray]:
    """The port's state dict filled from ``bundle`` (TensorFlow layouts converted)."""
    state: dict[str, np.ndarray] = {}
    for name, layer in model.layers.items():
        base = f"{SCOPE}/{name}"
        if isinstance(layer, GatedConv2d):
            for part, scope in (("conv", base), ("gate", base + "_g")):
                state[f"layers.{name}.{part}.weight"] = _conv(bundle.read(f"{scope}/kernel"))
                state[f"layers.{name}.{part}.bias"] = bundle.read(f"{scope}/bias")
        elif isinstance(layer, GatedDeconv2d):
            # [kh, kw, out, in] -> ConvTranspose2d's [in, out, kh, kw]
            state[f"layers.{name}.deconv.weight"] = _conv(bundle.read(f"{base}/w"))
            state[f"layers.{name}.deconv.bias"] = bundle.read(f"{base}/biases1")
    first = list(INPUT_ORDER)
    for part in ("conv", "gate"):
        key = f"layers.gconv1_ds.{part}.weight"
        state[key] = state[key][:, first]
        key = f"layers.gconv14.{part}"
        state[key + ".weight"] = state[key + ".weight"][list(BGR)][:, [*first, 9, 10, 11]]
        state[key + ".bias"] = state[key + ".bias"][list(BGR)]
    return state


def load_official(prefix: str | Path) -> SCFEGANGenerator:
    """The generator of the official checkpoint ``prefix`` (``.index`` + ``.data-*`` files)."""
    bundle = TensorBundle(prefix)
    first = f"{SCOPE}/gconv1_ds/kernel"
    if first not in bundle.entries:
        raise CheckpointError(f"{bundle.prefix}: not an SC-FEGAN checkpoint (no {first!r})")
    cnum = bundle.shape(first)[-1]
    model = SCFEGANGenerator(width=cnum / CNUM)
    state = _official_tensors(bundle, model)
    expected = model.state_dict()
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{bundle.prefix}: {key} has shape {tuple(value.shape)}, "
                                  f"expected {tuple(expected[key].shape)} at width {cnum}/64")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                           state.items()}, strict=True)
    return model.eval()


def convert_official(prefix: str | Path, output: Path, *, size: int = 512) -> float:
    """Write the official checkpoint ``prefix`` as ONNX to ``output``; returns the export's
    max |onnx - torch|."""
    return export_generator(load_official(prefix), output, size=size, source="official")
