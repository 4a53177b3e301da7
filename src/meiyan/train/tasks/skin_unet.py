"""Training of the U-Net skin segmenter (:class:`meiyan.skin.unet.UNet256`) on the trainer.

The seed's recipe is the default: Adam at 1e-3, binary cross-entropy, pixel accuracy reported
(D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015); soft Dice
(F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net", 3DV 2016) and a cosine schedule
(I. Loshchilov and F. Hutter, "SGDR", ICLR 2017) are options. Photos are read one at a time,
framed as at inference (:mod:`meiyan.skin.framing`, the letterbox of the whole image), resized to
``size`` and augmented on the fly. ``best.pt`` is the epoch with the best validation IoU (the
training IoU when nothing is held out).

``data`` may instead be a pack of several datasets (:mod:`meiyan.train.skin_data`, made by
``meiyan train skin-pack``): then ``val_split`` of each dataset's training photos is held out,
validation reports each dataset's IoU over its labelled pixels, ``best.pt`` has the best mean
of them, ignored pixels (eyebrows, unknown) leave the loss, small datasets are repeated so that
each gives at least ``min_share`` (default a quarter) as many samples per epoch as the largest,
and augmentation is :func:`meiyan.train.augment.augment_framed`. ``init`` starts from the
weights of an exported model or a checkpoint of the same width.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from meiyan.skin.framing import crop, whole_image_window
from meiyan.skin.unet import UNet256
from meiyan.train.augment import augment, augment_framed
from meiyan.train.datasets import PairSource, check_sizes, find_pairs
from meiyan.train.export import export_onnx
from meiyan.train.skin_data import IGNORE, Pack
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
    init: str | None = None
    min_share: float = 0.25
    """A pack's smaller datasets are repeated to give at least this share of the largest's
    samples per epoch."""

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
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random ``(train, validation)`` split of ``range(n)``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_split) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class SkinDataset(EpochDataset):
    """Labelled photos read lazily, letterboxed to ``size`` and (optionally) augmented.

    An item is ``(image, mask, weight, group)``: ``(size, size, 3)`` uint8 RGB, ``(size, size)``
    float32 mask in [0, 1] (soft at the edges after resizing), the float32 loss weight (here all
    ones) and the dataset's index (here 0); the training step converts on the device.
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
        return (torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(mask),
                torch.ones(mask.shape), 0)


class PackedSkinDataset(EpochDataset):
    """Photos of a skin pack (:class:`meiyan.train.skin_data.Pack`), items as
    :class:`SkinDataset`'s; ``group`` is the index of the photo's dataset in ``groups``.

    Augmented: a random view of the stored square (:func:`augment_framed`); else the face
    window itself, resized to ``size``.
    """

    def __init__(self, pack: Pack, indices: np.ndarray, groups: list[str], size: int,
                 augmented: bool, seed: int = 0) -> None:
        super().__init__(seed)
        self.pack, self.indices, self.groups = pack, np.asarray(indices), groups
        self.size, self.augmented = size, augmented

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = self.pack[int(self.indices[index])]
        inner = item.image.shape[0] / self.pack.header["context"]
        if self.augmented:
            image, target = augment_framed(item.image, item.target, self.size, inner,
                                           self.rng(index))
        else:
            side = item.image.shape[0]
            a = round((side - inner) / 2)
            image = cv2.resize(item.image[a : side - a, a : side - a], (self.size,) * 2,
                               interpolation=cv2.INTER_AREA)
            target = cv2.resize(item.target[a : side - a, a : side - a], (self.size,) * 2,
                                interpolation=cv2.INTER_NEAREST)
        mask = (target == 1).astype(np.float32)
        weight = (target != IGNORE).astype(np.float32)
        return (torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(mask),
                torch.from_numpy(weight), self.groups.index(item.dataset))


def to_input(images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 to the network's ``(N, 3, H, W)`` float32 in [0, 1]."""
    return images.permute(0, 3, 1, 2).contiguous().float() / 255.0


def loss_value(
    logits: torch.Tensor, target: torch.Tensor, kind: str, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy, soft Dice loss (Milletari et al., V-Net, 3DV 2016) or their sum,
    over the pixels where ``weight`` (default: all) is 1."""
    total = logits.new_zeros(())
    w = torch.ones_like(target) if weight is None else weight
    if kind in ("bce", "bce+dice"):
        bce = functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
        total = total + (bce * w).sum() / w.sum().clamp(min=1.0)
    if kind in ("dice", "bce+dice"):
        prob = torch.sigmoid(logits) * w
        inter = (prob * target).sum(dim=(1, 2, 3))
        denom = prob.sum(dim=(1, 2, 3)) + (target * w).sum(dim=(1, 2, 3))
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
def evaluate(
    model: UNet256, loader: DataLoader, device: torch.device, groups: list[str] | None = None
) -> dict[str, float]:
    """Mean IoU and pixel accuracy of ``model`` (eval mode) at probability 0.5, over the
    labelled pixels (weight 1). With ``groups`` (the datasets' names) also each dataset's IoU
    as ``iou_NAME``, and ``iou`` is the mean of those."""
    model.eval()
    n = len(groups or [""])
    sums = torch.zeros(n, 2, dtype=torch.float64, device=device)
    counts = torch.zeros(n, dtype=torch.float64, device=device)
    for images, masks, weights, group in loader:
        pred = torch.sigmoid(model.logits(to_input(images.to(device))))[:, 0] >= 0.5
        known = weights.to(device) > 0.5
        target = masks.to(device) >= 0.5
        right = ((pred == target) & known).flatten(1).sum(dim=1, dtype=torch.float64)
        accuracy = right / known.flatten(1).sum(dim=1, dtype=torch.float64).clamp(min=1)
        values = torch.stack([iou_per_image(pred & known, target & known), accuracy], dim=1)
        g = group.to(device)
        sums.index_add_(0, g, values)
        counts.index_add_(0, g, torch.ones_like(g, dtype=torch.float64))
    means = sums / counts.clamp(min=1)[:, None]
    present = counts > 0
    out = {"iou": float(means[present, 0].mean()) if present.any() else 0.0,
           "accuracy": float(means[present, 1].mean()) if present.any() else 0.0}
    if groups:
        out.update({f"iou_{g}": float(means[i, 0]) for i, g in enumerate(groups) if present[i]})
    return out


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
        unet = _LogitUNet(width=self.cfg.width)
        if self.cfg.init:
            initial_weights(unet, self.cfg.init, self._calibration_images())
        return {"unet": unet}

    def _calibration_images(self, n: int = 32) -> torch.Tensor:
        """``n`` training photos of the data (of a pack: spread over its training splits),
        framed for validation, as network input."""
        cfg = self.cfg
        if Path(cfg.data).is_file():
            pack = Pack(cfg.data)
            train = np.nonzero(pack.split == "train")[0]
            picks = train[np.linspace(0, len(train) - 1, n).round().astype(int)]
            data: Dataset = PackedSkinDataset(pack, picks, sorted(set(pack.dataset.tolist())),
                                              cfg.size, False)
        else:
            sources = find_pairs(Path(cfg.data), cfg.skin_labels)[:n]
            data = SkinDataset(sources, cfg.size, False)
        return to_input(torch.stack([data[i][0] for i in range(len(data))]))

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
        if Path(cfg.data).is_file():
            return self._packed_datasets()
        sources = find_pairs(Path(cfg.data), cfg.skin_labels)
        check_sizes(sources)
        train_idx, val_idx = split_indices(len(sources), cfg.val_split, self.seed)
        self._has_validation = len(val_idx) > 0
        train = SkinDataset([sources[i] for i in train_idx], cfg.size, cfg.augment, self.seed)
        val = SkinDataset([sources[i] for i in val_idx], cfg.size, False)
        return train, (val if len(val) else None)

    def _packed_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Training and validation parts of every dataset's training split in a pack."""
        cfg = self.cfg
        pack = Pack(cfg.data)
        self._groups = sorted(set(pack.dataset.tolist()))
        parts, val = {}, []
        for name in self._groups:
            idx = pack.indices(name, "train")
            tr, va = split_indices(len(idx), cfg.val_split, self.seed)
            parts[name], val = idx[tr], [*val, *idx[va]]
        largest = max(len(v) for v in parts.values())
        want = math.ceil(cfg.min_share * largest)
        train = np.concatenate([np.tile(v, -(-want // len(v))) for v in parts.values()])
        self._has_validation = len(val) > 0
        return (PackedSkinDataset(pack, train, self._groups, cfg.size, cfg.augment, self.seed),
                PackedSkinDataset(pack, np.array(val, int), self._groups, cfg.size, False)
                if val else None)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        images, masks, weights, _ = self.to_device(batch)
        x, y, w = to_input(images), masks[:, None], weights[:, None]
        with self.autocast():
            logits = self.train_nets["unet"](x).float()
        loss = loss_value(logits, y, self.cfg.loss, w)
        self.optimize(loss, "adam")
        known = w >= 0.5
        pred, target = (logits.detach() >= 0) & known, (y >= 0.5) & known
        return {"loss": loss.detach(), "iou": iou_per_image(pred, target).mean(),
                "accuracy": accuracy_per_image(pred, target).mean()}

    def validate(self, loader: DataLoader) -> dict[str, float]:
        metrics = evaluate(self.nets["unet"], loader, self.device, getattr(self, "_groups", None))
        return {f"val_{k}": v for k, v in metrics.items()}

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


def initial_weights(unet: UNet256, path: str | Path, images: torch.Tensor) -> None:
    """Load ``unet``'s weights from a ``skin-unet`` checkpoint, or from an exported ``.onnx``
    model of the same width.

    The export folded every BatchNorm into its convolution, so from ONNX the folded kernels
    are loaded and each BatchNorm is re-estimated on ``images`` (``(N, 3, H, W)`` network
    input): its mean and variance become those of its convolution's output, and its scale and
    shift undo them, so that the network computes what the model did, in either mode.
    """
    if not str(path).endswith(".onnx"):
        unet.load_state_dict(load_task(path, SkinUNetTask.name).nets["unet"].state_dict())
        return
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kernels = [[arrays[n] for n in node.input[1:]] for node in graph.node if node.op_type == "Conv"]
    convs = [m for m in unet.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(kernels) != len(convs) or any(
        k[0].shape != tuple(c.weight.shape) for k, c in zip(kernels, convs, strict=False)
    ):
        raise ValueError(f"{path} is not a U-Net of width {unet.width}")
    pairs: list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d]] = []
    for block in unet.modules():
        if isinstance(block, torch.nn.Sequential):
            layers = list(block)
            pairs += [(a, b) for a, b in itertools.pairwise(layers)
                      if isinstance(b, torch.nn.BatchNorm2d)]
    stats: dict[torch.nn.Conv2d, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [conv.register_forward_hook(
        lambda m, _, y: stats.__setitem__(m, (y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3)))))
        for conv, _ in pairs]
    with torch.no_grad():
        for conv, (weight, bias) in zip(convs, kernels, strict=True):
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            conv.bias.copy_(torch.from_numpy(bias.copy()))
        for _, bn in pairs:  # identity while the statistics are gathered
            bn.reset_parameters()
            bn.running_var.fill_(1.0 - bn.eps)
        unet.eval()(images)
        for hook in hooks:
            hook.remove()
        for conv, bn in pairs:
            mean, var = stats[conv]
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt())
            bn.bias.copy_(mean)
    unet.train()


def load_model(path: str | Path) -> tuple[UNet256, int]:
    """The U-Net of a ``skin-unet`` checkpoint (eval mode, sigmoid output) and its input size."""
    task = load_task(path, SkinUNetTask.name)
    unet = UNet256(task.cfg.width)
    unet.load_state_dict(task.nets["unet"].state_dict())
    return unet.eval(), task.cfg.size
