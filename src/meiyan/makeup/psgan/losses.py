"""PSGAN's training losses (W. Jiang et al., CVPR 2020), with meiyan's weighting away from the
facial features.

- adversarial: least squares (X. Mao et al., "Least Squares Generative Adversarial Networks",
  ICCV 2017), :func:`lsgan`;
- cycle consistency, weight 10 (J.-Y. Zhu et al., "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks", ICCV 2017), and identity (G(x, x) = x), weight 5 as
  the official code's 10 x 0.5, both L1;
- perceptual: squared error of a feature extractor's maps (J. Johnson et al., "Perceptual
  Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016), weight 0.05 as the
  official 10 x 5e-3; the extractor (VGG-16's trunk) is a parameter;
- makeup: L1 between the result and its region-wise histogram-matched version (lips 1, eyes 1,
  skin 0.1), the target made by :func:`meiyan.makeup.transfer.match_histograms` in Lab; in
  0-255 units averaged over the whole image, as the official loss, so the weights keep their
  balance.

Cycle and perceptual losses are weighted per pixel by :func:`feature_weight`: the facial
features (lips, eyes, brows), where makeup should change the face, count less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from meiyan.makeup.colour import lab_to_rgb, rgb_to_lab
from meiyan.makeup.psgan.network import REGIONS
from meiyan.makeup.transfer import match_histograms

CYCLE_WEIGHT = 10.0
IDENTITY_WEIGHT = 5.0
PERCEPTUAL_WEIGHT = 0.05
MAKEUP_WEIGHTS: dict[str, float] = {"lips": 1.0, "skin": 0.1, "eyes": 1.0}
"""Weights of the makeup loss per PSGAN region."""

Features = Callable[[torch.Tensor], torch.Tensor | Sequence[torch.Tensor]]


def lsgan(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean squared distance of the logits to 1 (real) or 0."""
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if real else 0.0))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def feature_weight(features: torch.Tensor, sigma: float, floor: float = 0.1) -> torch.Tensor:
    """Per-pixel weight ``(N, 1, H, W)`` in ``(floor, 1]`` away from the facial features.

    ``features``: ``(N, 1, H, W)`` mask of lips, eyes and brows; it is inverted, blurred by a
    Gaussian of ``sigma`` pixels and scaled so that each image's maximum is 1, then mapped
    from (0, 1] into (``floor``, 1].
    """
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    blurred = _gaussian_blur(1.0 - features.clamp(0, 1), sigma).clamp_min(0)
    peak = blurred.amax(dim=(2, 3), keepdim=True)
    share = (blurred + 1e-6) / (peak + 1e-6)
    return floor + (1.0 - floor) * share


def cycle_loss(
    reconstructed: torch.Tensor, original: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted L1 of G(G(x, y), x) to x, times :data:`CYCLE_WEIGHT`."""
    err = (reconstructed - original).abs()
    if weight is not None:
        err = err * weight
    return CYCLE_WEIGHT * err.mean()


def identity_loss(same: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 of G(x, x) to x, times :data:`IDENTITY_WEIGHT`."""
    return IDENTITY_WEIGHT * F.l1_loss(same, original)


def perceptual_loss(
    features: Features,
    made_up: torch.Tensor,
    original: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted squared error between ``features`` of the result and of the source (held
    fixed), times :data:`PERCEPTUAL_WEIGHT`; ``weight`` is resized to each feature map."""
    with torch.no_grad():
        target = features(original)
    got = features(made_up)
    pairs = zip(
        [got] if torch.is_tensor(got) else got,
        [target] if torch.is_tensor(target) else target,
        strict=True,
    )
    total = made_up.new_zeros(())
    for g, t in pairs:
        err = (g - t) ** 2
        if weight is not None:
            err = err * F.interpolate(
                weight, size=g.shape[-2:], mode="bilinear", align_corners=False
            )
        total = total + err.mean()
    return PERCEPTUAL_WEIGHT * total


def histogram_target(
    made_up: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor, ref_mask: torch.Tensor
) -> torch.Tensor:
    """The result with one region's colours histogram-matched to the reference's (no grad).

    ``made_up``, ``reference``: ``(N, 3, H, W)`` in [-1, 1]; ``mask``, ``ref_mask``:
    ``(N, H, W)`` binary masks of the region in each. Pixels outside the region, and images
    where either region is empty, keep the result's values.
    """
    rgb = ((made_up.detach().float().cpu().numpy() + 1) / 2).clip(0, 1).transpose(0, 2, 3, 1)
    ref = ((reference.detach().float().cpu().numpy() + 1) / 2).clip(0, 1).transpose(0, 2, 3, 1)
    sel_all = mask.detach().cpu().numpy() > 0.5
    ref_sel_all = ref_mask.detach().cpu().numpy() > 0.5
    out = rgb.copy()
    for i in range(len(rgb)):
        sel, ref_sel = sel_all[i], ref_sel_all[i]
        if not sel.any() or not ref_sel.any():
            continue
        lab = rgb_to_lab(rgb[i])
        ref_lab = rgb_to_lab(ref[i])
        values = lab[sel]
        mapped = match_histograms(
            values, np.ones(len(values)), ref_lab[ref_sel], np.ones(int(ref_sel.sum())), values
        )
        out[i][sel] = lab_to_rgb(mapped.reshape(-1, 1, 3)).reshape(-1, 3)
    matched = torch.from_numpy(out.transpose(0, 3, 1, 2) * 2 - 1)
    matched = matched.to(device=made_up.device, dtype=made_up.dtype)
    inside = torch.from_numpy(sel_all).to(made_up.device).unsqueeze(1)
    return torch.where(inside, matched, made_up.detach())


def makeup_loss(
    made_up: torch.Tensor, reference: torch.Tensor, masks: torch.Tensor, ref_masks: torch.Tensor
) -> torch.Tensor:
    """PSGAN's makeup loss: per region (lips, skin, eyes: the channels of ``masks`` and
    ``ref_masks``, ``(N, 3, H, W)``) the L1 to :func:`histogram_target` inside the region, in
    0-255 units over the whole image, weighted by :data:`MAKEUP_WEIGHTS`."""
    total = made_up.new_zeros(())
    for k, region in enumerate(REGIONS):
        m = masks[:, k : k + 1]
        target = histogram_target(made_up, reference, masks[:, k], ref_masks[:, k])
        l1 = ((made_up - target) * m).abs().mean() * (255.0 / 2.0)
        total = total + MAKEUP_WEIGHTS[region] * l1
    return total
