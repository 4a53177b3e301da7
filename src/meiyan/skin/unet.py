"""The seed's U-Net skin segmenter in PyTorch (training and export only).

Architecture after O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, in the 256x256 Keras variant the project started
from: five encoder blocks of two (3x3 conv, BatchNorm, ReLU) at 32-512 channels, each followed by
2x2 max-pooling; a centre of two such convs at 1024 channels; five decoder blocks of 2x nearest
upsampling, concatenation with the matching encoder block (encoder first) and three
(3x3 conv, BatchNorm, ReLU); a final 1x1 conv and a sigmoid.

This module needs torch (``pip install meiyan[train]``). Inference goes through the exported ONNX
file and onnxruntime (:mod:`meiyan.skin.unet_onnx`), without torch.
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "meiyan.skin.unet needs PyTorch; install it with `pip install meiyan[train]` "
        "(inference uses the ONNX model and needs no torch)"
    ) from e

BASE_CHANNELS = (32, 64, 128, 256, 512)
CENTRE_CHANNELS = 1024


def scaled(channels: int, width: float) -> int:
    """``channels`` scaled by ``width``, at least 1."""
    return max(1, round(channels * width))


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # Keras defaults of the original: biased convolutions, BatchNorm epsilon 1e-3.
    return [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=True),
        nn.BatchNorm2d(c_out, eps=1e-3),
        nn.ReLU(inplace=True),
    ]


def _stack(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += _conv_bn_relu(c_in if i == 0 else c_out, c_out)
    return nn.Sequential(*layers)


class UNet256(nn.Module):
    """Symmetric U-Net: ``(N, 3, H, W)`` float RGB in [0, 1] to ``(N, 1, H, W)`` skin probability.

    ``H`` and ``W`` must be multiples of 32 (five poolings); the seed used 256x256. ``width``
    scales every channel count (1.0: 34,600,353 trainable parameters, as in the Keras summary).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = float(width)
        chans = [scaled(c, width) for c in BASE_CHANNELS]
        centre = scaled(CENTRE_CHANNELS, width)
        self.down = nn.ModuleList()
        c_in = 3
        for c in chans:
            self.down.append(_stack(c_in, c, 2))
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.centre = _stack(c_in, centre, 2)
        self.up = nn.ModuleList()
        c_in = centre
        for c in reversed(chans):
            self.up.append(_stack(c + c_in, c, 3))  # encoder skip first, then upsampled
            c_in = c
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(c_in, 1, kernel_size=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output; training uses it for a numerically stable loss."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.centre(x)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(torch.cat([skip, self.upsample(x)], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Skin probability in [0, 1]."""
        return torch.sigmoid(self.logits(x))


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable parameters, BatchNorm running statistics)`` of ``model``."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None
    )
    return trainable, stats
