"""The PSGAN generator in PyTorch (training and export only).

W. Jiang, S. Liu, C. Gao, J. Cao, R. He, J. Feng and S. Yan, "PSGAN: Pose and Expression Robust
Spatial-Aware GAN for Customizable Makeup Transfer", CVPR 2020, in the layout of the authors'
code (github.com/wtjiang98/PSGAN, ``psgan/net.py``), so that its ``G.pth`` loads as it is:

- **MDNet** (makeup distill network, the official ``pnet_*``) encodes the reference: a 7x7 conv
  3->64, two 4x4 stride-2 convs to 256 channels at 64x64 (256 input), each with affine instance
  norm and ReLU, three residual blocks, then two 1x1 convs (``simple_spade``) giving one-channel
  makeup matrices gamma and beta at 64x64.
- **AMM** (attentive makeup morphing): for each region (lips, skin, eye shadow) every source
  position attends to the reference positions of the same region, by the dot product of their
  features: the 136 landmark offsets (pixel minus each of the 68 landmarks, ``y`` then ``x``,
  unit length) and 0.01 times the visual features of the source (MANet after three residual
  blocks) and the reference (MDNet's output), times 200, softmaxed. The morphed gamma and beta
  are the attention-weighted reference matrices, summed over the regions.
- **MANet** (makeup apply network, the official ``tnet_*``): the same encoder without affine
  parameters, six residual blocks with ``x (1 + gamma') + beta'`` applied before the fourth,
  two 4x4 transposed convs back to 256x256, a 7x7 conv to RGB and tanh.

The official ``atten_bottleneck_g`` and ``atten_bottleneck_b`` hold a 1x1 conv each that its
forward pass never applies; they are kept so that every key of its state dict has a place.
Images are RGB in [-1, 1]; masks ``(N, 3, H, W)`` are binary, in the order lips, skin, eyes.
A per-region ``shade`` (N, 3) scales each region's gamma and beta: 0 transfers nothing there.

This module needs torch (``pip install meiyan[train]``); inference runs the exported ONNX file
with onnxruntime (:mod:`meiyan.makeup.psgan.engine`).
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "meiyan.makeup.psgan.network needs PyTorch; install it with `pip install meiyan[train]` "
        "(inference uses the ONNX model and needs no torch)"
    ) from e

IMAGE_SIZE = 256
FEATURE_SIZE = 64  # the makeup matrices' and the attention's grid (IMAGE_SIZE / 4)
LANDMARKS = 68
REGIONS: tuple[str, ...] = ("lips", "skin", "eyes")
"""PSGAN's attention regions, in the order of the mask and shade channels."""
VISUAL_WEIGHT = 0.01  # weight of the visual features beside the landmark offsets
ATTENTION_SCALE = 200.0  # the official "hyper parameter for visual feature"
OFFICIAL_PARAMETERS = 12_615_620
"""Trainable parameters of the official generator (every one is a key of its ``G.pth``)."""


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm (affine in MDNet, not in MANet) and a skip."""

    def __init__(self, dim: int, affine: bool) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim, affine=affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class MakeupMatrices(nn.Module):
    """1x1 convs from MDNet's features to the one-channel makeup matrices gamma and beta."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.get_gamma = nn.Conv2d(dim, 1, kernel_size=1, bias=False)
        self.get_beta = nn.Conv2d(dim, 1, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.get_gamma(x), self.get_beta(x)


class UnusedAttentionConv(nn.Module):
    """The official attention modules' 1x1 conv (``.g``), which its forward never applies."""

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Conv2d(1, 1, kernel_size=1)


def _encoder_block(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=kernel, stride=stride, padding=padding, bias=False),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.ReLU(inplace=True),
    )


def landmark_features(landmarks: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """PSGAN's relative-position features ``(N, 3, 136, 64, 64)`` of one face.

    ``landmarks``: ``(N, 68, 2)`` ``(x, y)`` in the pixels of the 256x256 image; ``masks``:
    ``(N, 3, 256, 256)`` binary region masks. Each 64x64 position takes the pixel of the 256
    grid that nearest-neighbour down-sampling keeps (``4i``), its offsets to every landmark
    (all ``y`` first, then all ``x``, as the official preprocessing) are cut to each region
    and scaled to unit length (zero outside the region).
    """
    step = IMAGE_SIZE // FEATURE_SIZE
    grid = torch.arange(FEATURE_SIZE, dtype=landmarks.dtype, device=landmarks.device) * step
    ys = grid.view(1, 1, FEATURE_SIZE, 1) - landmarks[:, :, 1].reshape(-1, LANDMARKS, 1, 1)
    xs = grid.view(1, 1, 1, FEATURE_SIZE) - landmarks[:, :, 0].reshape(-1, LANDMARKS, 1, 1)
    diff = torch.cat([ys.expand(-1, -1, -1, FEATURE_SIZE), xs.expand(-1, -1, FEATURE_SIZE, -1)], 1)
    small = F.interpolate(masks, size=(FEATURE_SIZE, FEATURE_SIZE), mode="nearest")
    diff = diff.unsqueeze(1) * small.unsqueeze(2)  # (N, 3, 136, 64, 64)
    norm = torch.linalg.vector_norm(diff, dim=2, keepdim=True)
    return diff / torch.where(norm == 0, torch.full_like(norm, 1e10), norm)


class PSGANGenerator(nn.Module):
    """PSGAN's generator (MDNet, AMM, MANet); parameter names as in the official ``G.pth``.

    ``forward(source, reference, mask_s, mask_r, diff_s, diff_r, shade=None)``: images
    ``(N, 3, 256, 256)`` in [-1, 1], masks ``(N, 3, 256, 256)`` (lips, skin, eyes), landmark
    features ``(N, 3, 136, 64, 64)`` from :func:`landmark_features`, ``shade`` ``(N, 3)``
    (default 1); returns the source wearing the reference's makeup, in [-1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        # MDNet (official "pnet").
        self.pnet_in = _encoder_block(3, 64, 7, 1, 3)
        self.pnet_down_1 = _encoder_block(64, 128, 4, 2, 1)
        self.pnet_down_2 = _encoder_block(128, 256, 4, 2, 1)
        self.atten_bottleneck_g = UnusedAttentionConv()
        self.atten_bottleneck_b = UnusedAttentionConv()
        self.simple_spade = MakeupMatrices(256)
        for i in range(3):
            setattr(self, f"pnet_bottleneck_{i + 1}", ResidualBlock(256, affine=True))
        # MANet (official "tnet"); the instance norms keep the official ("spade") names.
        self.tnet_in_conv = nn.Conv2d(3, 64, kernel_size=7, stride=1, padding=3, bias=False)
        self.tnet_in_spade = nn.InstanceNorm2d(64, affine=False)
        self.tnet_in_relu = nn.ReLU(inplace=True)
        dim = 64
        for i in range(2):
            setattr(
                self,
                f"tnet_down_conv_{i + 1}",
                nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False),
            )
            setattr(self, f"tnet_down_spade_{i + 1}", nn.InstanceNorm2d(dim * 2, affine=False))
            setattr(self, f"tnet_down_relu_{i + 1}", nn.ReLU(inplace=True))
            dim *= 2
        for i in range(6):
            setattr(self, f"tnet_bottleneck_{i + 1}", ResidualBlock(dim, affine=False))
        for i in range(2):
            setattr(
                self,
                f"tnet_up_conv_{i + 1}",
                nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
            )
            setattr(self, f"tnet_up_spade_{i + 1}", nn.InstanceNorm2d(dim // 2, affine=False))
            setattr(self, f"tnet_up_relu_{i + 1}", nn.ReLU(inplace=True))
            dim //= 2
        self.tnet_out = nn.Sequential(
            nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()
        )

    def _block(self, name: str) -> nn.Module:
        return getattr(self, name)

    def encode_reference(self, reference: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """MDNet: the reference's visual features and its makeup matrices gamma, beta."""
        s = self.pnet_down_2(self.pnet_down_1(self.pnet_in(reference)))
        for i in range(3):
            s = self._block(f"pnet_bottleneck_{i + 1}")(s)
        gamma, beta = self.simple_spade(s)
        return s, gamma, beta

    def encode_source(self, source: torch.Tensor) -> torch.Tensor:
        """MANet up to the makeup: encoder and the first three residual blocks."""
        c = self.tnet_in_relu(self.tnet_in_spade(self.tnet_in_conv(source)))
        for i in range(2):
            c = self._block(f"tnet_down_conv_{i + 1}")(c)
            c = self._block(f"tnet_down_spade_{i + 1}")(c)
            c = self._block(f"tnet_down_relu_{i + 1}")(c)
        for i in range(3):
            c = self._block(f"tnet_bottleneck_{i + 1}")(c)
        return c

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        """MANet after the makeup: the last three residual blocks and the up-sampling."""
        for i in range(3, 6):
            c = self._block(f"tnet_bottleneck_{i + 1}")(c)
        for i in range(2):
            c = self._block(f"tnet_up_conv_{i + 1}")(c)
            c = self._block(f"tnet_up_spade_{i + 1}")(c)
            c = self._block(f"tnet_up_relu_{i + 1}")(c)
        return self.tnet_out(c)

    @staticmethod
    def morph(
        fea_s: torch.Tensor,
        fea_r: torch.Tensor,
        mask_s: torch.Tensor,
        mask_r: torch.Tensor,
        diff_s: torch.Tensor,
        diff_r: torch.Tensor,
        matrices: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """AMM: the reference's gamma and beta ``(N, 1, 64, 64)`` moved onto the source, per
        region ``(N, 3, 64, 64)`` each.

        As in the official code the softmax runs over all 4096 reference positions, those
        outside the region entering with logit 0 (weight ``exp(-200 x best match)``, nothing
        beside a match), and only weights between positions inside the region are kept: with
        binary masks that is the reference matrices cut to the region before the product and
        the result cut to the source's region after it.
        """
        n, dim = fea_s.shape[:2]
        hw = FEATURE_SIZE * FEATURE_SIZE
        size = (FEATURE_SIZE, FEATURE_SIZE)
        ms = F.interpolate(mask_s, size=size, mode="nearest").unsqueeze(2)  # (N, 3, 1, h, w)
        mr = F.interpolate(mask_r, size=size, mode="nearest").unsqueeze(2)
        theta = torch.cat([fea_s.unsqueeze(1) * ms * VISUAL_WEIGHT, diff_s], dim=2)
        phi = torch.cat([fea_r.unsqueeze(1) * mr * VISUAL_WEIGHT, diff_r], dim=2)
        theta = theta.reshape(n * 3, dim + 2 * LANDMARKS, hw).transpose(1, 2)
        phi = phi.reshape(n * 3, dim + 2 * LANDMARKS, hw)
        weight = torch.softmax(torch.bmm(theta, phi) * ATTENTION_SCALE, dim=-1)  # (3N, hw, hw)
        out = []
        for matrix in matrices:
            ref = (matrix.unsqueeze(1) * mr).reshape(n * 3, hw, 1)
            moved = torch.bmm(weight, ref).reshape(n, 3, FEATURE_SIZE, FEATURE_SIZE)
            out.append(moved * ms.squeeze(2))
        return out[0], out[1]

    def makeup_matrices(
        self,
        source: torch.Tensor,
        reference: torch.Tensor,
        mask_s: torch.Tensor,
        mask_r: torch.Tensor,
        diff_s: torch.Tensor,
        diff_r: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MANet's features before the makeup, and the morphed gamma and beta per region."""
        c = self.encode_source(source)
        fea_r, gamma, beta = self.encode_reference(reference)
        gamma, beta = self.morph(c, fea_r, mask_s, mask_r, diff_s, diff_r, (gamma, beta))
        return c, gamma, beta

    @staticmethod
    def apply(
        c: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, shade: torch.Tensor | None
    ) -> torch.Tensor:
        """``c (1 + gamma') + beta'`` with each region's matrices scaled by its shade."""
        if shade is not None:
            gamma = gamma * shade[:, :, None, None]
            beta = beta * shade[:, :, None, None]
        return c * (1 + gamma.sum(1, keepdim=True)) + beta.sum(1, keepdim=True)

    def forward(
        self,
        source: torch.Tensor,
        reference: torch.Tensor,
        mask_s: torch.Tensor,
        mask_r: torch.Tensor,
        diff_s: torch.Tensor,
        diff_r: torch.Tensor,
        shade: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c, gamma, beta = self.makeup_matrices(source, reference, mask_s, mask_r, diff_s, diff_r)
        return self.decode(self.apply(c, gamma, beta, shade))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
