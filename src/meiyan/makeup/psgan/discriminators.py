"""PSGAN's discriminators: a PatchGAN per domain and three mask-conditioned region critics.

- :class:`PatchDiscriminator`: the 70x70-style PatchGAN (P. Isola et al., "Image-to-Image
  Translation with Conditional Adversarial Networks", CVPR 2017) with spectral normalisation
  (T. Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018),
  as PSGAN (W. Jiang et al., CVPR 2020) uses for the makeup and the non-makeup domain: 4x4
  convs 3->64->128->256 at stride 2, one to 512 at stride 1, leaky ReLU 0.01, and a 4x4 conv to
  one logit per patch (30x30 for a 256 image).
- :class:`RegionDiscriminator`: meiyan's brow, eye and lip critics (issue 16). Eight residual
  blocks of spatial feature transform (X. Wang et al., "Recovering Realistic Texture in Image
  Super-resolution by Deep Spatial Feature Transform", CVPR 2018) condition the critic on the
  region's shape: the condition network sees, per mask, the mask, its left-right flip and its
  two mirror-symmetric completions (left half mirrored onto the right, and the right half onto
  the left), so a lopsided or square brow is judged against its own symmetric versions. Eyes
  and brows stack the left and right crops: 6 input channels, 8 condition channels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

REGION_KINDS: dict[str, int] = {"brow": 2, "eye": 2, "lip": 1}
"""Crops per region critic: brows and eyes are left and right, lips one."""


def _sn_conv(
    c_in: int, c_out: int, kernel: int, stride: int, padding: int, bias: bool = True
) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias))


class PatchDiscriminator(nn.Module):
    """Spectral-normalised PatchGAN: ``(N, 3, H, W)`` in [-1, 1] -> patch logits."""

    def __init__(self, conv_dim: int = 64, repeat: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_sn_conv(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat):
            layers += [_sn_conv(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        layers += [_sn_conv(dim, dim * 2, 4, 1, 1), nn.LeakyReLU(0.01)]
        self.main = nn.Sequential(*layers)
        self.out = _sn_conv(dim * 2, 1, 4, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.main(x))


def mask_condition(masks: torch.Tensor) -> torch.Tensor:
    """``(N, K, H, W)`` masks -> ``(N, 4K, H, W)``: per mask itself, its left-right flip, its
    left half mirrored onto the right and its right half mirrored onto the left."""
    w = masks.shape[-1]
    half = w // 2
    flip = masks.flip(-1)
    columns = torch.arange(w, device=masks.device)
    left = (columns < half).to(masks.dtype)  # where the left mirror keeps the mask itself
    right = (columns >= w - half).to(masks.dtype)
    centre = 1.0 - left - right  # the middle column of an odd width stays in both mirrors
    left_mirror = masks * (left + centre) + flip * right
    right_mirror = masks * (right + centre) + flip * left
    parts = torch.stack([masks, flip, left_mirror, right_mirror], dim=2)  # (N, K, 4, H, W)
    return parts.flatten(1, 2)


class SFTLayer(nn.Module):
    """Spatial feature transform: ``x * (1 + scale(c)) + shift(c)`` from condition features."""

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.scale = nn.Sequential(
            nn.Conv2d(cond_dim, cond_dim, 1), nn.LeakyReLU(0.1), nn.Conv2d(cond_dim, dim, 1)
        )
        self.shift = nn.Sequential(
            nn.Conv2d(cond_dim, cond_dim, 1), nn.LeakyReLU(0.1), nn.Conv2d(cond_dim, dim, 1)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.scale(cond)) + self.shift(cond)


class SFTResBlock(nn.Module):
    """SFT, 3x3 conv, leaky ReLU, SFT, 3x3 conv, plus the input (SFT-GAN's residual block)."""

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.sft1 = SFTLayer(dim, cond_dim)
        self.conv1 = _sn_conv(dim, dim, 3, 1, 1)
        self.sft2 = SFTLayer(dim, cond_dim)
        self.conv2 = _sn_conv(dim, dim, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv1(self.sft1(x, cond)))
        return x + self.conv2(self.sft2(h, cond))


class RegionDiscriminator(nn.Module):
    """A critic of one region's crops, conditioned on their masks by SFT.

    ``forward(crops, masks)``: ``crops`` ``(N, 3K, h, w)`` in [-1, 1] (``K`` = 2 for brows and
    eyes, left and right concatenated; 1 for lips), ``masks`` ``(N, K, h, w)``; ``h`` and ``w``
    multiples of 8. Returns patch logits ``(N, 1, h / 8, w / 8)``.
    """

    def __init__(self, crops: int, dim: int = 64, cond_dim: int = 32, blocks: int = 8) -> None:
        super().__init__()
        if crops not in (1, 2):
            raise ValueError(f"a region critic takes 1 or 2 crops, got {crops}")
        self.crops = crops
        self.head = nn.Sequential(
            _sn_conv(3 * crops, dim, 3, 1, 1), nn.LeakyReLU(0.2),
            _sn_conv(dim, dim, 4, 2, 1), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.condition = nn.Sequential(
            nn.Conv2d(4 * crops, cond_dim * 2, 4, 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(cond_dim * 2, cond_dim * 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(cond_dim * 2, cond_dim, 1),
        )  # fmt: skip
        self.blocks = nn.ModuleList(SFTResBlock(dim, cond_dim) for _ in range(blocks))
        self.tail = nn.Sequential(
            _sn_conv(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            _sn_conv(dim * 2, dim * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            _sn_conv(dim * 4, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, crops: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if crops.shape[1] != 3 * self.crops or masks.shape[1] != self.crops:
            raise ValueError(
                f"expected {3 * self.crops} image and {self.crops} mask channels, "
                f"got {crops.shape[1]} and {masks.shape[1]}"
            )
        cond = self.condition(mask_condition(masks))
        x = self.head(crops)
        for block in self.blocks:
            x = block(x, cond)
        return self.tail(x)


def region_discriminators() -> nn.ModuleDict:
    """The brow, eye and lip critics."""
    return nn.ModuleDict({name: RegionDiscriminator(k) for name, k in REGION_KINDS.items()})
