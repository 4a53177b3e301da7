"""An official PSGAN ``G.pth`` (W. Jiang et al., CVPR 2020) to ONNX, checked against torch.

The state dict must have the official key layout (``pnet_in.*``, ``pnet_down_*``,
``pnet_bottleneck_*``, ``simple_spade.*``, ``atten_bottleneck_*``, ``tnet_*``); a
``module.`` prefix (saved from ``DataParallel``) is dropped. It is read with
``torch.load(weights_only=True)``: tensors only, no pickled code runs.

The ONNX graph (:class:`PSGANExport`) takes RGB in [0, 1] and the faces' landmarks and masks,
computes PSGAN's landmark features itself and returns two images in [0, 1]: ``image``, the
source wearing the reference's makeup with each region's gamma and beta scaled by its
``shade``, and ``bare``, the same decoder without makeup (gamma = beta = 0). Their difference
is the makeup alone, free of the generator's reconstruction error. ``precision`` stores the
convolution weights as float16 or int8 (:mod:`meiyan.makeup.psgan.compress`) to make the file
smaller.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meiyan.errors import ModelError
from meiyan.makeup.psgan.compress import PRECISIONS, compress_weights
from meiyan.makeup.psgan.network import (
    IMAGE_SIZE,
    LANDMARKS,
    REGIONS,
    PSGANGenerator,
    landmark_features,
)

OPSET = 17
INPUTS: tuple[str, ...] = (
    "source",
    "reference",
    "source_masks",
    "reference_masks",
    "source_landmarks",
    "reference_landmarks",
    "shade",
)
"""ONNX inputs: images ``(N, 3, 256, 256)`` RGB in [0, 1], masks ``(N, 3, 256, 256)`` binary
(lips, skin, eyes), landmarks ``(N, 68, 2)`` ``(x, y)`` pixels, shade ``(N, 3)``."""
OUTPUTS: tuple[str, ...] = ("image", "bare")


class PSGANExport(nn.Module):
    """The generator with PSGAN's preprocessing and a no-makeup twin output, for ONNX."""

    def __init__(self, generator: PSGANGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(
        self,
        source: torch.Tensor,
        reference: torch.Tensor,
        source_masks: torch.Tensor,
        reference_masks: torch.Tensor,
        source_landmarks: torch.Tensor,
        reference_landmarks: torch.Tensor,
        shade: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        diff_s = landmark_features(source_landmarks, source_masks)
        diff_r = landmark_features(reference_landmarks, reference_masks)
        c, gamma, beta = g.makeup_matrices(
            source * 2 - 1, reference * 2 - 1, source_masks, reference_masks, diff_s, diff_r
        )
        image = g.decode(g.apply(c, gamma, beta, shade))
        bare = g.decode(c)
        return (image + 1) / 2, (bare + 1) / 2


def load_official(path: Path) -> PSGANGenerator:
    """A generator filled from a state dict in the official layout (strictly: every key)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise ModelError(f"{path}: not a readable PyTorch state dict ({e})") from e
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelError(f"{path}: expected a state dict of tensors (PSGAN's G.pth)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = PSGANGenerator()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path}: not PSGAN's generator layout ({len(missing)} keys missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    wrong = [k for k, v in state.items() if v.shape != expected[k].shape]
    if wrong:
        raise ModelError(f"{path}: {len(wrong)} tensors of the wrong shape, e.g. {wrong[0]}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def example_inputs(batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Plausible random inputs: noise images, box-shaped region masks, landmarks near them."""
    g = torch.Generator().manual_seed(seed)
    size = IMAGE_SIZE
    images = [torch.rand(batch, 3, size, size, generator=g) for _ in range(2)]
    masks = []
    for _ in range(2):
        m = torch.zeros(batch, len(REGIONS), size, size)
        m[:, 0, 180:210, 100:156] = 1  # lips
        m[:, 1, 60:230, 50:206] = 1  # skin
        m[:, 1, 80:130, 60:200] = 0
        m[:, 1, 180:210, 100:156] = 0
        m[:, 2, 80:130, 60:200] = 1  # eyes
        masks.append(m)
    lms = [torch.rand(batch, LANDMARKS, 2, generator=g) * 150 + 50 for _ in range(2)]
    shade = torch.rand(batch, len(REGIONS), generator=g)
    return (*images, *masks, *lms, shade)


def export_psgan(
    weights: Path | PSGANGenerator,
    output: Path,
    *,
    source: str = "official G.pth",
    precision: str = "float32",
) -> float:
    """Write the generator (a ``G.pth`` path, or a model) to ``output`` as ONNX, its
    convolution weights stored at ``precision`` (``float32``, ``float16`` or ``int8``);
    returns the largest |onnx - torch| over both outputs on :func:`example_inputs`."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise ModelError("ONNX export needs the onnx and onnxruntime packages") from e
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    model = load_official(weights) if isinstance(weights, Path) else weights.eval()
    wrapper = PSGANExport(model).eval()
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(output.name + ".part")  # written whole, checked, then renamed
    dynamic = {name: {0: "batch"} for name in (*INPUTS, *OUTPUTS)}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs only `onnx`, offline.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Instance norm always uses the input's statistics, as the exporter notes.
        warnings.filterwarnings("ignore", message=".*instance_norm.*", category=UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks, fixed at 256
        torch.onnx.export(
            wrapper,
            example_inputs(),
            str(part),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=dynamic,
        )
    proto = onnx.load(str(part))
    meta = {
        "meiyan.model": "psgan",
        "meiyan.input_size": str(IMAGE_SIZE),
        "meiyan.regions": ",".join(REGIONS),
        "meiyan.landmarks": "ibug68",
        "meiyan.weights": source,
        "meiyan.precision": precision,
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        "meiyan PSGAN (Jiang et al., CVPR 2020): source, reference, masks, "
        "68 landmarks, shade -> image with makeup, bare"
    )
    compress_weights(proto, precision)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(part))

    check = example_inputs(seed=1)
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(*check)]
    session = ort.InferenceSession(str(part), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUTS), {n: t.numpy() for n, t in zip(INPUTS, check, strict=True)})
    part.replace(output)
    return float(max(np.abs(a - b).max() for a, b in zip(got, expected, strict=True)))
