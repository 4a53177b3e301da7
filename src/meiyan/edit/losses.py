"""SC-FEGAN's training losses (Jo and Park, ICCV 2019, section 3.3), for the trainer.

Generator: ``L_G = L_per-pixel + 0.05 L_percept + 0.001 L_G_SN + 120 (L_style(I_gen) +
L_style(I_comp)) + 0.1 L_tv``, with ``I_comp`` the generated image inside the mask and the
original outside. Discriminator (SN-PatchGAN, Yu et al. 2019): hinge loss on every patch score,
plus 10 times a WGAN-GP gradient penalty (Gulrajani et al. 2017) and 0.001 E[D(I_gt)^2] (the
paper lists this term in L_G, where it has no gradient; it keeps the discriminator's output
near zero). Images are RGB in [-1, 1], masks 1 in the hole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from meiyan.edit.network import composite

HOLE_WEIGHT = 1.5  # the paper's alpha: the erased part weighs more in the per-pixel loss
PERCEPTUAL = 0.05
STYLE = 120.0
TV = 0.1
ADVERSARIAL = 0.001
GRADIENT_PENALTY = 10.0
DRIFT = 0.001

Features = Callable[[torch.Tensor], Sequence[torch.Tensor]]
Critic = Callable[[torch.Tensor], torch.Tensor]


def per_pixel_loss(generated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 over all elements, the hole weighted by :data:`HOLE_WEIGHT`."""
    diff = (generated - real).abs()
    return (HOLE_WEIGHT * mask * diff + (1 - mask) * diff).mean()


def perceptual_loss(feats: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between feature maps (VGG-16 pool1-3), summed over the layers."""
    return sum((f - r).abs().mean() for f, r in zip(feats, real, strict=True))


def gram(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, C)`` Gram matrix normalised by ``C * H * W``."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def style_loss(feats: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between Gram matrices (the 1 / C^2 of the paper), summed over the layers."""
    return sum((gram(f) - gram(r)).abs().mean() for f, r in zip(feats, real, strict=True))


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation: mean absolute difference of horizontal and of vertical neighbours."""
    return ((x[..., :, 1:] - x[..., :, :-1]).abs().mean()
            + (x[..., 1:, :] - x[..., :-1, :]).abs().mean())


def generator_loss(generated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                   features: Features, critic: Critic) -> dict[str, torch.Tensor]:
    """Every term of L_G (weighted) and their sum under ``"total"``.

    ``features`` maps an image to its VGG-16 pool1-3 maps; ``critic`` maps an image to the
    discriminator's patch scores (with the mask, sketch and colour bound in).
    """
    comp = composite(generated, real, mask)
    f_real = [f.detach() for f in features(real)]
    f_gen, f_comp = features(generated), features(comp)
    terms = {
        "per_pixel": per_pixel_loss(generated, real, mask),
        "perceptual": PERCEPTUAL * (perceptual_loss(f_gen, f_real)
                                    + perceptual_loss(f_comp, f_real)),
        "style": STYLE * (style_loss(f_gen, f_real) + style_loss(f_comp, f_real)),
        "tv": TV * tv_loss(comp),
        "adversarial": -ADVERSARIAL * critic(comp).mean(),
    }
    terms["total"] = sum(terms.values())
    return terms


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: E[(||grad D(x)||_2 - 1)^2] at random points between real and fake images."""
    t = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def discriminator_loss(real: torch.Tensor, comp: torch.Tensor,
                       critic: Critic) -> dict[str, torch.Tensor]:
    """SN-PatchGAN hinge loss, gradient penalty and drift term, and their sum ``"total"``;
    ``comp`` is the composited generated image (detached by the caller)."""
    d_real, d_fake = critic(real), critic(comp)
    terms = {
        "hinge": torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean(),
        "gradient_penalty": GRADIENT_PENALTY * gradient_penalty(critic, real, comp),
        "drift": DRIFT * (d_real**2).mean(),
    }
    terms["total"] = sum(terms.values())
    return terms
