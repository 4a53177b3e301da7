"""Training of PSGAN (W. Jiang et al., "PSGAN: Pose and Expression Robust Spatial-Aware GAN for
Customizable Makeup Transfer", CVPR 2020) on synthetic triples, on the trainer.

Data: :mod:`meiyan.train.psgan_data` (a source face, a reference face wearing a random virtual
look, the target: the source wearing that look), built with the engine's own crops, masks and
landmarks. Networks: the generator in the official layout, a spectral-normalised PatchGAN per
domain (``d_makeup`` judges the result against the target, ``d_bare`` the cycle's
reconstruction against the source) and the brow, eye and lip critics (``regions``,
:mod:`meiyan.makeup.psgan.discriminators`); Adam (D. P. Kingma and J. Ba, ICLR 2015) with
PSGAN's settings (2e-4, betas 0.5 and 0.999).

Generator loss (:mod:`meiyan.makeup.psgan.losses`): L1 to the known target (``target_weight``),
cycle ``G(G(x, y), x) = x`` (10) and perceptual (VGG-16's trunk of the HED wheel,
:mod:`meiyan.train.vgg`), both weighted per pixel by the blurred inverted mask of lips, eyes and
brows normalised into (``feature_floor``, 1]; identity ``G(x, x) = x``; PSGAN's makeup loss
(L1 to the region-wise histogram-matched result, lips 1, eyes 1, skin 0.1); LSGAN adversarial
terms of both domain critics and, times ``region_weight``, of the region critics. The first
``warmup_epochs`` epochs train the generator alone on the cheap terms (L1 to the target and the
cycle): two generator passes a step instead of three, no VGG, no critics, for CPU runs.

Validation on triples of held-out faces (fixed, bare sources): PSNR to the target of the
generator's output (``val_psnr``), of what the engine adds, the source plus the output less the
no-makeup output (``val_psnr_engine``, which chooses ``best.pt``), and of the source itself
(``val_psnr_source``, the no-transfer baseline). Export: :func:`meiyan.makeup.psgan.convert.
export_psgan`, the ONNX that ``meiyan convert psgan`` writes and the ``psgan`` engine runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from meiyan.errors import ModelError
from meiyan.makeup.psgan.convert import PSGANExport, export_psgan, load_official
from meiyan.makeup.psgan.discriminators import PatchDiscriminator, region_discriminators
from meiyan.makeup.psgan.losses import (
    cycle_loss,
    feature_weight,
    identity_loss,
    lsgan,
    makeup_loss,
    perceptual_loss,
)
from meiyan.makeup.psgan.network import REGIONS, PSGANGenerator, landmark_features
from meiyan.train.psgan_data import CRITIC_REGIONS, CRITIC_SIZES, FacePack, draw_triple
from meiyan.train.trainer import EpochDataset, Task, load_checkpoint
from meiyan.train.vgg import VGG16Features

_BOXES = {"brow": (0, 1), "eye": (2, 3), "lip": (4,)}
"""Which of the samples' ``critic_boxes`` each critic takes (left crops flipped)."""
_CAFFE_SCALE = 127.5  # Caffe VGG inputs are 127.5 times [-1, 1] images


@dataclass
class PSGANConfig:
    """Task options of ``meiyan train psgan`` (the trainer's are in ``TrainerConfig``).

    ``data``: a pack (:func:`meiyan.train.psgan_data.pack`); ``init``: an official ``G.pth``
    or a ``psgan`` checkpoint whose generator starts the run; ``vgg``: VGG-16 weights for the
    perceptual loss (default: HED's trunk); ``limit``: the first training faces only.
    """

    data: str
    lr: float = 2e-4
    warmup_epochs: int = 0
    worn: float = 0.2
    """Share of training sources already wearing another random look."""
    limit: int | None = None
    val_limit: int = 32
    """Held-out faces whose triples validate (one triple each, fixed by the seed)."""
    target_weight: float = 10.0
    """Weight of the L1 distance to the synthetic target (images in [-1, 1])."""
    region_weight: float = 1.0
    """Weight of the brow, eye and lip critics' adversarial terms."""
    feature_sigma: float = 8.0
    """Blur (pixels of the 256 crop) of the feature mask that weights cycle and perceptual."""
    feature_floor: float = 0.2
    """The weight ``a`` at the features: cycle and perceptual count in (a, 1]."""
    vgg: str | None = None
    init: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` for options outside their range."""
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be 0 or more, got {self.warmup_epochs}")
        if not 0.0 <= self.worn <= 1.0:
            raise ValueError(f"worn must be in [0, 1], got {self.worn}")
        if not 0.0 <= self.feature_floor < 1.0:
            raise ValueError(f"feature_floor must be in [0, 1), got {self.feature_floor}")


class TripleDataset(EpochDataset):
    """Triples of a pack's faces as tensors: one per source face, the reference face and the
    look drawn from (seed, epoch, index), or from (seed, index) alone when ``fixed``."""

    def __init__(self, faces: FacePack, ids: np.ndarray, seed: int = 0, *, worn: float = 0.0,
                 fixed: bool = False) -> None:
        super().__init__(seed)
        self.faces, self.ids, self.worn, self.fixed = faces, ids, worn, fixed

    def __len__(self) -> int:
        return len(self.ids)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index]) if self.fixed else super().rng(index)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = draw_triple(self.faces, self.ids, index, self.rng(index), self.worn)
        return {k: torch.from_numpy(v) for k, v in sample.items()}


def region_crops(images: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor,
                 region: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One critic's crops ``(N, 3K, h, w)`` and masks ``(N, K, h, w)`` of ``images`` and the
    samples' ``critic_masks``, at ``critic_boxes``; the left brow and eye are flipped so that
    both sides face the same way."""
    h, w = CRITIC_SIZES[region]
    channel = CRITIC_REGIONS.index(region)
    crops, cuts = [], []
    for k, box in enumerate(_BOXES[region]):
        rows_i, rows_m = [], []
        for i in range(len(images)):
            y, x = (int(v) for v in boxes[i, box])
            rows_i.append(images[i, :, y : y + h, x : x + w])
            rows_m.append(masks[i, channel : channel + 1, y : y + h, x : x + w])
        img, m = torch.stack(rows_i), torch.stack(rows_m)
        if k == 1:
            img, m = img.flip(-1), m.flip(-1)
        crops.append(img)
        cuts.append(m)
    return torch.cat(crops, 1), torch.cat(cuts, 1)


class RegionCritics(nn.Module):
    """The brow, eye and lip critics as one network: ``forward(images, masks, boxes)`` cuts
    each region out (:func:`region_crops`) and returns the three critics' patch logits."""

    def __init__(self) -> None:
        super().__init__()
        self.critics = region_discriminators()

    def forward(self, images: torch.Tensor, masks: torch.Tensor,
                boxes: torch.Tensor) -> list[torch.Tensor]:
        return [critic(*region_crops(images, masks, boxes, region))
                for region, critic in self.critics.items()]


class TrainingGenerator(PSGANGenerator):
    """PSGAN's generator (same parameters and keys) whose ``forward`` runs every pass of a
    training step, so that DistributedDataParallel sees one forward per backward:
    ``(x, y, masks_x, masks_y, diff_x, diff_y, identity)`` -> the result ``G(x, y)``, the
    cycle ``G(G(x, y), x)`` and, when ``identity``, ``G(x, x)``."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, y: torch.Tensor, masks_x: torch.Tensor, masks_y: torch.Tensor,
        diff_x: torch.Tensor, diff_y: torch.Tensor, identity: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        fake = super().forward(x, y, masks_x, masks_y, diff_x, diff_y)
        rec = super().forward(fake, x, masks_x, masks_x, diff_x, diff_x)
        same = super().forward(x, x, masks_x, masks_x, diff_x, diff_x) if identity else None
        return fake, rec, same


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


def _initial_generator(path: str) -> dict[str, torch.Tensor]:
    """The generator weights of a ``psgan`` checkpoint or an official ``G.pth``."""
    try:
        state = load_checkpoint(path, PSGANTask.name)
    except ModelError:
        return load_official(Path(path)).state_dict()
    return state["networks"]["generator"]


class PSGANTask(Task):
    """``meiyan train psgan``: networks ``generator``, ``d_makeup``, ``d_bare`` and
    ``regions``; optimisers ``g`` and ``d``."""

    name = "psgan"
    best_metric = "val_psnr_engine"
    find_unused_parameters = True  # the official atten_bottleneck convs are never applied

    def __init__(self, config: PSGANConfig) -> None:
        super().__init__()
        config.validate()
        self.cfg = config
        self._train_set: TripleDataset | None = None
        self._vgg: nn.Module | None = None

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PSGANTask:
        # A checkpoint's networks replace the initial ones: its init file is not needed.
        return cls(PSGANConfig(**{**config, "init": None}))

    def build_networks(self) -> dict[str, nn.Module]:
        generator = TrainingGenerator()
        if self.cfg.init:
            generator.load_state_dict(_initial_generator(self.cfg.init))
        return {"generator": generator, "d_makeup": PatchDiscriminator(),
                "d_bare": PatchDiscriminator(), "regions": RegionCritics()}

    def build_optimizers(
        self, epochs: int
    ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LRScheduler]]:
        lr, betas = self.cfg.lr, (0.5, 0.999)
        critics = [p for k, net in self.nets.items() if k != "generator"
                   for p in net.parameters()]
        return {"g": torch.optim.Adam(self.nets["generator"].parameters(), lr, betas),
                "d": torch.optim.Adam(critics, lr, betas)}, {}

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        cfg = self.cfg
        faces = FacePack(cfg.data)
        train_ids = faces.indices(False)[: cfg.limit]
        val_ids = faces.indices(True)[: cfg.val_limit]
        self._train_set = TripleDataset(faces, train_ids, self.seed, worn=cfg.worn)
        val = TripleDataset(faces, val_ids, self.seed, fixed=True) if len(val_ids) > 1 else None
        return self._train_set, val

    @property
    def full_loss(self) -> bool:
        """Whether the epoch being trained is past the warm-up (every loss and critic)."""
        epoch = self._train_set.epoch if self._train_set is not None else 0
        return epoch >= self.cfg.warmup_epochs

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """VGG-16 pool1-3 of ``image`` in [-1, 1] (the loss network, loaded when first used).

        Caffe weights (HED's) see 0-255 pixels: their maps are divided by 127.5, about the
        maps of a VGG seeing [-1, 1] as PSGAN's does, so the perceptual weight keeps its
        balance with the other terms.
        """
        if self._vgg is None:
            self._vgg = VGG16Features(self.cfg.vgg).to(self.device)
        scale = _CAFFE_SCALE if self._vgg.caffe else 1.0
        return [f / scale for f in self._vgg(image)]

    def _critic_step(self, b: Mapping[str, torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     source: torch.Tensor, rec: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of every critic, each on its real and fake samples in one batch."""
        nets = self.train_nets
        with self.autocast():
            made = nets["d_makeup"](torch.cat([real, fake]))
            bare = nets["d_bare"](torch.cat([source, rec]))
            masks, boxes = b["critic_masks"].repeat(2, 1, 1, 1), b["critic_boxes"].repeat(2, 1, 1)
            regions = nets["regions"](torch.cat([real, fake]), masks, boxes)
        n = len(real)
        terms = {"d_makeup": lsgan(made[:n].float(), True) + lsgan(made[n:].float(), False),
                 "d_bare": lsgan(bare[:n].float(), True) + lsgan(bare[n:].float(), False),
                 "d_regions": sum(lsgan(r[:n].float(), True) + lsgan(r[n:].float(), False)
                                  for r in regions)}
        total = sum(terms.values())
        self.optimize(total, "d")
        return {k: v.detach() for k, v in terms.items()}

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        cfg = self.cfg
        x, y, target = (b[k] * 2 - 1 for k in ("source", "reference", "target"))
        ms, mr = b["source_masks"], b["reference_masks"]
        diff_s = landmark_features(b["source_landmarks"], ms)
        diff_r = landmark_features(b["reference_landmarks"], mr)
        full = self.full_loss
        with self.autocast():
            fake, rec, same = self.train_nets["generator"](x, y, ms, mr, diff_s, diff_r, full)
        fake, rec = fake.float(), rec.float()
        weight = feature_weight(b["critic_masks"].amax(1, keepdim=True), cfg.feature_sigma,
                                cfg.feature_floor)
        terms = {"target": cfg.target_weight * (fake - target).abs().mean(),
                 "cycle": cycle_loss(rec, x, weight)}
        values: dict[str, torch.Tensor] = {}
        if full:
            values.update(self._critic_step(b, target, fake.detach(), x, rec.detach()))
            critics = [self.train_nets[k] for k in ("d_makeup", "d_bare", "regions")]
            for net in critics:
                net.requires_grad_(False)
            with self.autocast():
                made, bare = self.train_nets["d_makeup"](fake), self.train_nets["d_bare"](rec)
                regions = self.train_nets["regions"](fake, b["critic_masks"], b["critic_boxes"])
            for net in critics:
                net.requires_grad_(True)
            terms["identity"] = identity_loss(same.float(), x)
            terms["perceptual"] = perceptual_loss(self.features, fake, x, weight)
            terms["makeup"] = makeup_loss(fake, y, ms, mr)
            terms["adversarial"] = lsgan(made.float(), True) + lsgan(bare.float(), True)
            terms["regions"] = cfg.region_weight * sum(lsgan(r.float(), True) for r in regions)
        terms["total"] = sum(terms.values())
        self.optimize(terms["total"], "g")
        values.update({f"g_{k}": v.detach() for k, v in terms.items()})
        values["psnr"] = psnr((fake.detach() + 1) / 2, (target + 1) / 2).mean()
        return values

    def validate(self, loader: DataLoader) -> dict[str, float]:
        export = PSGANExport(self.nets["generator"]).eval()
        sums = {"val_psnr": 0.0, "val_psnr_engine": 0.0, "val_psnr_source": 0.0}
        count = 0
        for batch in loader:
            b = self.to_device(batch)
            source, target = b["source"], b["target"]
            shade = torch.ones(len(source), len(REGIONS), device=self.device)
            image, bare = export(source, b["reference"], b["source_masks"], b["reference_masks"],
                                 b["source_landmarks"], b["reference_landmarks"], shade)
            engine = (source + image - bare).clamp(0, 1)
            for key, result in (("val_psnr", image), ("val_psnr_engine", engine),
                                ("val_psnr_source", source)):
                sums[key] += psnr(result, target).sum().item()
            count += len(source)
        return {k: v / max(count, 1) for k, v in sums.items()}

    def export(self, path: Path, precision: str = "float32") -> float:
        """The generator as the ``psgan`` engine's ONNX, its convolution weights stored at
        ``precision`` (:mod:`meiyan.makeup.psgan.compress`)."""
        generator = PSGANGenerator()
        generator.load_state_dict(self.nets["generator"].state_dict())
        return export_psgan(generator, path, precision=precision,
                            source="meiyan psgan training on synthetic triples (virtual looks on "
                            "CelebA-HQ, LFW and FASSEG faces)")

