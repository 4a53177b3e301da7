"""Smaller PSGAN ONNX files: the convolutions' weights stored as float16 or int8 (no torch).

The float32 generator is about 50 MB. Its convolution and transposed-convolution weights
(all but 0.1% of its parameters) can be stored instead as

- ``float16``: each weight rounded to half precision and cast back to float32 by a ``Cast``
  node (about 25 MB);
- ``int8``: each output channel's weights scaled by its largest magnitude to [-127, 127] and
  rounded, restored by a ``DequantizeLinear`` node with a scale per channel (about 13 MB).

Only the stored weights change: every operation still runs in float32, so onnxruntime runs
either file at the float model's speed, on any provider. Small tensors (biases, 1x1 gamma and
beta heads, instance-norm scales) stay float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

PRECISIONS: tuple[str, ...] = ("float32", "float16", "int8")
"""How the convolution weights of an exported PSGAN model are stored."""
MIN_ELEMENTS = 4096  # smaller weight tensors stay float32: they weigh nothing
_WEIGHT_OPS = {"Conv": 0, "ConvTranspose": 1}  # op: axis of the output channels in its weight


def _int8(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 of ``weight`` along ``axis``: values and scales."""
    others = tuple(a for a in range(weight.ndim) if a != axis)
    scale = (np.abs(weight).max(axis=others) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    shape = [1] * weight.ndim
    shape[axis] = -1
    values = np.clip(np.rint(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return values, scale


def compress_weights(model: onnx.ModelProto, precision: str) -> int:
    """Store the large convolution weights of ``model`` (in place) at ``precision``; returns
    how many tensors were compressed."""
    from onnx import TensorProto, helper, numpy_helper

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    if precision == "float32":
        return 0
    graph = model.graph
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, slot))
    added, nodes = [], []
    for init in list(graph.initializer):
        found = uses.get(init.name, [])
        ops = {op for op, _ in found}
        if (
            len(ops) != 1
            or not ops <= _WEIGHT_OPS.keys()
            or any(slot != 1 for _, slot in found)
            or init.data_type != TensorProto.FLOAT
        ):
            continue
        weight = numpy_helper.to_array(init)
        if weight.size < MIN_ELEMENTS:
            continue
        graph.initializer.remove(init)
        name = init.name
        if precision == "float16":
            added.append(numpy_helper.from_array(weight.astype(np.float16), f"{name}.f16"))
            nodes.append(helper.make_node("Cast", [f"{name}.f16"], [name], to=TensorProto.FLOAT))
        else:
            axis = _WEIGHT_OPS[ops.pop()]
            values, scale = _int8(weight, axis)
            added += [
                numpy_helper.from_array(values, f"{name}.q"),
                numpy_helper.from_array(scale, f"{name}.scale"),
                numpy_helper.from_array(np.zeros_like(scale, np.int8), f"{name}.zero"),
            ]
            inputs = [f"{name}.q", f"{name}.scale", f"{name}.zero"]
            nodes.append(helper.make_node("DequantizeLinear", inputs, [name], axis=axis))
    graph.initializer.extend(added)
    ordered = nodes + list(graph.node)  # the new nodes read initializers only: put them first
    del graph.node[:]
    graph.node.extend(ordered)
    return len(nodes)
