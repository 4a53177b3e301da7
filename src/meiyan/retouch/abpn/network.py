"""ABPN, the adaptive blend pyramid network (torch; for training and export only).

T. Lei, Y. Zhou, W. Wang, Z. Li and J. Zhang, "ABPN: Adaptive Blend Pyramid Network for
Real-Time Local Retouching of Ultra High-Resolution Photo", CVPR 2022 (arXiv 2203.11324). The
image ``I`` is split into a three-level Laplacian pyramid (average pooling down, bilinear up):

* the context-aware **local retouching layer** (LRL) works on the quarter-resolution copy: an
  encoder (three stride-2 stages), a blemish-mask branch (a light U-shaped decoder giving the
  mask's logits at quarter resolution) and a decoder whose skip connections pass through
  **gated local attention** (a 3x3 sigmoid gate from the upsampled features, the skip and the
  blemish mask) predict the retouched quarter-resolution image. Unlike the paper, the LRL also
  reads the pooled magnitude of the two finer Laplacian bands (spots 1-4 px across are below a
  quarter-resolution pixel) and a ``moles`` plane (1: moles are to be removed too);
* the **reverse adaptive blend module** (R-ABM) turns that image into a blend layer ``B`` by
  inverting the ABM (regularised where the ABM's slope vanishes, i.e. black and white pixels);
* the **blend pyramid layer** (BPL) expands ``B`` level by level: bilinear upsampling, then a
  refining module (three 3x3 convolutions, the middle one dilated) fed by the level's Laplacian
  band and image, adding a correction;
* the **adaptive blend module** (ABM) applies the layer at full resolution:
  ``R = (sum_i j_i g_i(I)) B + sum_i k_i g_i(I)``, ``g = (1, I, I^2)``, six learnable scalars
  initialised to soft light (``j = (0, 2, -2)``, ``k = (0, 0, 1)``;
  :func:`meiyan.retouch.blend.soft_light`).

With the default widths the network has :data:`PARAMETERS` parameters. Inputs are ``(N, 3, H,
W)`` RGB in [0, 1] with ``H`` and ``W`` multiples of :data:`MULTIPLE`, and ``(N, 1)`` moles.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

MULTIPLE = 32
"""Input sides must be multiples of this (two pyramid levels, three encoder strides)."""
PARAMETERS = 1_283_232
"""Parameters at the default widths (tested)."""
SOFT_LIGHT = ((0.0, 2.0, -2.0), (0.0, 0.0, 1.0))
"""The ABM's ``(j, k)`` for soft light."""
_EPS = 0.02  # R-ABM regularisation of the ABM's slope


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation)


def _down(x: torch.Tensor) -> torch.Tensor:
    return functional.avg_pool2d(x, 2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class ABM(nn.Module):
    """The adaptive blend module: ``R = a(I) B + c(I)`` with ``a``, ``c`` quadratic in ``I``."""

    def __init__(self) -> None:
        super().__init__()
        self.j = nn.Parameter(torch.tensor(SOFT_LIGHT[0]))
        self.k = nn.Parameter(torch.tensor(SOFT_LIGHT[1]))

    def coefficients(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``a(I) = sum_i j_i g_i(I)`` and ``c(I) = sum_i k_i g_i(I)``."""
        sq = image * image
        a = self.j[0] + self.j[1] * image + self.j[2] * sq
        c = self.k[0] + self.k[1] * image + self.k[2] * sq
        return a, c

    def forward(self, image: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
        a, c = self.coefficients(image)
        return a * layer + c

    def reverse(self, image: torch.Tensor, retouched: torch.Tensor) -> torch.Tensor:
        """R-ABM: the layer taking ``image`` to ``retouched``, 0.5 where the slope vanishes."""
        a, c = self.coefficients(image)
        b = 0.5 + a * (retouched - c - 0.5 * a) / (a * a + _EPS**2)
        return b.clamp(0.0, 1.0)


class GatedLocalAttention(nn.Module):
    """A decoder step: the skip features gated by a local 3x3 sigmoid attention map computed
    from the upsampled features, the skip and the blemish mask, then fused."""

    def __init__(self, cup: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.gate = _conv(cup + cskip + 1, cskip)
        self.fuse = nn.Sequential(_conv(cup + cskip, cout), _act())

    def forward(self, up: torch.Tensor, skip: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(torch.cat([up, skip, mask], 1)))
        return self.fuse(torch.cat([up, g * skip], 1))


class LRL(nn.Module):
    """The context-aware local retouching layer, on the quarter-resolution copy."""

    def __init__(self, width: int = 32, inputs: int = 10) -> None:
        super().__init__()
        c0, c1, c2, c3 = width, 2 * width, 3 * width, 4 * width
        self.enc0 = nn.Sequential(_conv(inputs, c0), _act(), _conv(c0, c0), _act())
        self.enc1 = nn.Sequential(_conv(c0, c1, 2), _act(), _conv(c1, c1), _act())
        self.enc2 = nn.Sequential(_conv(c1, c2, 2), _act(), _conv(c2, c2), _act())
        self.enc3 = nn.Sequential(_conv(c2, c3, 2), _act(), _conv(c3, c3, dilation=2), _act())
        self.mask2 = nn.Sequential(_conv(c3 + c2, c1), _act())
        self.mask1 = nn.Sequential(_conv(c1 + c1, c0), _act())
        self.mask0 = nn.Sequential(_conv(c0 + c0, c0), _act(), nn.Conv2d(c0, 1, 1))
        self.dec2 = GatedLocalAttention(c3, c2, c2)
        self.dec1 = GatedLocalAttention(c2, c1, c1)
        self.dec0 = GatedLocalAttention(c1, c0, c0)
        self.out = nn.Conv2d(c0, 3, 1)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Retouched quarter-resolution ``image`` and the blemish mask's logits, from the
        LRL's input ``x`` (image, detail and moles planes)."""
        f0 = self.enc0(x)
        f1 = self.enc1(f0)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        m = self.mask2(torch.cat([_up(f3), f2], 1))
        m = self.mask1(torch.cat([_up(m), f1], 1))
        logits = self.mask0(torch.cat([_up(m), f0], 1))
        p0 = torch.sigmoid(logits)
        p1 = _down(p0)
        d = self.dec2(_up(f3), f2, _down(p1))
        d = self.dec1(_up(d), f1, p1)
        d = self.dec0(_up(d), f0, p0)
        return (image + self.out(d)).clamp(0.0, 1.0), logits


class Refine(nn.Module):
    """A BPL refining module: a correction of the upsampled layer from the level's Laplacian
    band and image."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(9, width), _act(), _conv(width, width, dilation=2), _act(), _conv(width, 3)
        )

    def forward(self, layer: torch.Tensor, band: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = torch.cat([layer - 0.5, band * 4.0, image], 1)
        return (layer + self.body(x)).clamp(0.0, 1.0)


class Output(NamedTuple):
    """What :class:`ABPN` returns, all ``(N, C, H, W)``."""

    retouched: torch.Tensor
    """The ABM's output at full resolution."""
    layer: torch.Tensor
    """The blend layer at full resolution (0.5: unchanged)."""
    mask_logits: torch.Tensor
    """The blemish mask's logits at quarter resolution."""
    low: torch.Tensor
    """The LRL's retouched quarter-resolution image."""


class ABPN(nn.Module):
    """The adaptive blend pyramid network (Lei et al., CVPR 2022); see the module docstring."""

    def __init__(self, width: int = 32, refine: tuple[int, int] = (8, 16)) -> None:
        super().__init__()
        self.width, self.refine_widths = width, refine
        self.lrl = LRL(width)
        self.refine0 = Refine(refine[0])
        self.refine1 = Refine(refine[1])
        self.abm = ABM()

    def local(
        self, image: torch.Tensor, moles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The LRL's pass alone: the retouched quarter-resolution image, the blemish mask's
        logits and the pyramid ``[band0, band1, i1, i2]`` the rest of the network reads."""
        i1 = _down(image)
        i2 = _down(i1)
        band0 = image - _up(i1)
        band1 = i1 - _up(i2)
        detail = torch.cat([_down(_down(band0.abs())) * 8.0, _down(band1.abs()) * 8.0], 1)
        n, _, h, w = i2.shape
        plane = moles.reshape(-1, 1, 1, 1).expand(n, 1, h, w)
        low, logits = self.lrl(torch.cat([i2, detail, plane], 1), i2)
        return low, logits, [band0, band1, i1, i2]

    def forward(self, image: torch.Tensor, moles: torch.Tensor) -> Output:
        low, logits, (band0, band1, i1, i2) = self.local(image, moles)
        layer = self.abm.reverse(i2, low)
        layer = self.refine1(_up(layer), band1, i1)
        layer = self.refine0(_up(layer), band0, image)
        return Output(self.abm(image, layer), layer, logits, low)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "ABM",
    "ABPN",
    "LRL",
    "MULTIPLE",
    "PARAMETERS",
    "SOFT_LIGHT",
    "Output",
    "parameter_count",
]
