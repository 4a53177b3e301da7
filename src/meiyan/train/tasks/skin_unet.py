"""Training of the U-Net skin segmenter (:class:`meiyan.skin.unet.UNet256`) on the trainer.

The seed's recipe is the default: Adam at 1e-3, binary cross-entropy, pixel accuracy reported
(D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015); soft Dice
(F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net", 3DV 2016) and a cosine schedule
(I. Loshchilov and F. Hutter, "SGDR", ICLR 2017) are options. Photos are read one at a time,
framed as at inference (:mod:`meiyan.skin.framing`, the letterbox of the whole image), resized to
``size`` and augmented on the fly. ``best.pt`` is the epoch with the best validation IoU (the
training IoU when nothing is held out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from meiyan.skin.framing import crop, whole_image_window
from meiyan.skin.unet import UNet256
from meiyan.train.augment import augment
from meiyan.train.datasets import PairSource, check_sizes, find_pairs
from meiyan.train.export import export_onnx
from meiyan.train.trainer import EpochDataset, Task, load_task

LOSSES = ("bce", "dice", "bce+dice")
SCHEDULES = ("constant", "cosine")
INPUT_NAME = "image"
OUTPUT_NAME = "skin"


@dataclass
class SkinUNetConfig:
    """Task options of ``meiyan train skin-unet`` (the trainer's are in ``TrainerConfig``)."""

    data: str
    val_split: float = 0.2
    width: float = 1.0
    size: int = 256
    loss: str = "bce"
    lr: float = 1e-3
    schedule: str = "constant"
    skin_labels: list[int] | None = None
    augment: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` for options outside their range."""
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.size % 32:
            raise ValueError(f"size must be a multiple of 32, got {self.size}")
        if not 0.0 <= self.val_split < 1.0:
            raise ValueError(f"val_split must be in [0, 1), got {self.val_split}")
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random ``(train, validation)`` split of ``range(n)``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_split) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class SkinDataset(EpochDataset):
    """Labelled photos read lazily, letterboxed to ``size`` and (optionally) augmented.

    An item is ``(image, mask)``: ``(size, size, 3)`` uint8 RGB and ``(size, size)`` float32 in
    [0, 1] (soft at the edges after resizing); the training step converts on the device.
    """

    def __init__(self, sources: list[PairSource], size: int, augmented: bool, seed: int = 0):
        super().__init__(seed)
        self.sources, self.size, self.augmented = sources, size, augmented

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.sources[index].load()
        win = whole_image_window(*pair.mask.shape)
        image = crop(pair.image, win, self.size)
        mask = crop(pair.mask.astype(np.float32), win, self.size)
        if self.augmented:
            image, mask = augment(image, mask, self.rng(index))
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(mask)


def to_input(images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 to the network's ``(N, 3, H, W)`` float32 in [0, 1]."""
    return images.permute(0, 3, 1, 2).contiguous().float() / 255.0


def loss_value(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Binary cross-entropy, soft Dice loss (Milletari et al., V-Net, 3DV 2016) or their sum."""
    total = logits.new_zeros(())
    if kind in ("bce", "bce+dice"):
        total = total + functional.binary_cross_entropy_with_logits(logits, target)
    if kind in ("dice", "bce+dice"):
        prob = torch.sigmoid(logits)
        inter = (prob * target).sum(dim=(1, 2, 3))
        denom = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
        total = total + (1.0 - (2.0 * inter + 1.0) / (denom + 1.0)).mean()
    return total


def iou_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of boolean ``(N, ...)`` masks, image by image (1 where both are empty), float64."""
    dims = tuple(range(1, pred.ndim))
    inter = (pred & target).sum(dim=dims, dtype=torch.float64)
    union = (pred | target).sum(dim=dims, dtype=torch.float64)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def accuracy_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of pixels where ``pred`` equals ``target``, image by image, float64."""
    return (pred == target).flatten(1).double().mean(dim=1)


@torch.no_grad()
def evaluate(model: UNet256, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean IoU and pixel accuracy of ``model`` (eval mode) at probability 0.5."""
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    count = 0
    for images, masks in loader:
        pred = torch.sigmoid(model.logits(to_input(images.to(device))))[:, 0] >= 0.5
        target = masks.to(device) >= 0.5
        sums += torch.stack([iou_per_image(pred, target).sum(),
                             accuracy_per_image(pred, target).sum()])
        count += len(images)
    iou, acc = (sums / max(count, 1)).tolist()
    return {"iou": iou, "accuracy": acc}


class _LogitUNet(UNet256):
    """UNet256 whose ``forward`` is its logits: training calls ``forward`` (which
    DistributedDataParallel hooks) for a numerically stable loss. Same parameters and keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


class SkinUNetTask(Task):
    """``meiyan train skin-unet``: one network ``unet``, one Adam optimiser ``adam``."""

    name = "skin-unet"

    def __init__(self, config: SkinUNetConfig) -> None:
        super().__init__()
        config.validate()
        self.cfg = config
        self._has_validation = config.val_split > 0

    @property
    def best_metric(self) -> str:
        return "val_iou" if self._has_validation else "iou"

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SkinUNetTask:
        return cls(SkinUNetConfig(**config))

    def build_networks(self) -> dict[str, torch.nn.Module]:
        return {"unet": _LogitUNet(width=self.cfg.width)}

    def build_optimizers(
        self, epochs: int
    ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LRScheduler]]:
        cfg = self.cfg
        adam = torch.optim.Adam(self.nets["unet"].parameters(), lr=cfg.lr)
        schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        if cfg.schedule == "cosine":
            schedulers["cosine"] = torch.optim.lr_scheduler.CosineAnnealingLR(
                adam, epochs, eta_min=cfg.lr * 0.01)
        return {"adam": adam}, schedulers

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        cfg = self.cfg
        sources = find_pairs(Path(cfg.data), cfg.skin_labels)
        check_sizes(sources)
        train_idx, val_idx = split_indices(len(sources), cfg.val_split, self.seed)
        self._has_validation = len(val_idx) > 0
        train = SkinDataset([sources[i] for i in train_idx], cfg.size, cfg.augment, self.seed)
        val = SkinDataset([sources[i] for i in val_idx], cfg.size, False)
        return train, (val if len(val) else None)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, masks = self.to_device(batch)
        x, y = to_input(images), masks[:, None]
        with self.autocast():
            logits = self.train_nets["unet"](x).float()
        loss = loss_value(logits, y, self.cfg.loss)
        self.optimize(loss, "adam")
        pred, target = logits.detach() >= 0, y >= 0.5
        return {"loss": loss.detach(), "iou": iou_per_image(pred, target).mean(),
                "accuracy": accuracy_per_image(pred, target).mean()}

    def validate(self, loader: DataLoader) -> dict[str, float]:
        return {f"val_{k}": v for k, v in evaluate(self.nets["unet"], loader, self.device).items()}

    def export(self, path: Path) -> float:
        unet = UNet256(self.cfg.width)
        unet.load_state_dict(self.nets["unet"].state_dict())
        size = self.cfg.size
        dynamic = {0: "batch", 2: "height", 3: "width"}
        return export_onnx(
            unet, path,
            {INPUT_NAME: torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))},
            {INPUT_NAME: torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))},
            [OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
            metadata={"meiyan.model": "skin-unet", "meiyan.input_size": str(size),
                      "meiyan.width": str(unet.width), "meiyan.framing": "square-window/1"},
            doc="meiyan skin U-Net: (N, 3, H, W) RGB in [0, 1] to (N, 1, H, W) skin",
        )


def load_model(path: str | Path) -> tuple[UNet256, int]:
    """The U-Net of a ``skin-unet`` checkpoint (eval mode, sigmoid output) and its input size."""
    task = load_task(path, SkinUNetTask.name)
    unet = UNet256(task.cfg.width)
    unet.load_state_dict(task.nets["unet"].state_dict())
    return unet.eval(), task.cfg.size
