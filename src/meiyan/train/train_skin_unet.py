"""Training of the U-Net skin segmenter (:class:`meiyan.skin.unet.UNet256`).

The seed's recipe is the default: Adam at 1e-3, binary cross-entropy, pixel accuracy reported
(D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015). Photos are
framed as at inference (:mod:`meiyan.skin.framing`, the letterbox of the whole image), resized
to ``size`` and augmented on the fly. A checkpoint is written after every epoch (``last.pt``)
and the one with the best validation IoU is kept (``best.pt``); ``history.json`` records the
metrics of every epoch. Needs torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from meiyan.errors import ModelError
from meiyan.skin.framing import crop, whole_image_window
from meiyan.skin.unet import UNet256
from meiyan.train.augment import augment
from meiyan.train.datasets import Pair, load_pairs

CHECKPOINT_FORMAT = "meiyan-skin-unet/1"
LOSSES = ("bce", "dice", "bce+dice")
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Options of ``meiyan train skin-unet``."""

    data: str
    out: str = "runs/skin-unet"
    epochs: int = 100
    batch: int = 8
    val_split: float = 0.2
    width: float = 1.0
    size: int = 256
    loss: str = "bce"
    lr: float = 1e-3
    schedule: str = "constant"
    seed: int = 0
    skin_labels: list[int] | None = None
    augment: bool = True
    threads: int | None = None
    resume: bool = False

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
        if self.epochs < 1 or self.batch < 1:
            raise ValueError("epochs and batch must be at least 1")


def frame_pairs(pairs: list[Pair], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Letterboxed photos ``(N, size, size, 3)`` uint8 and soft masks ``(N, size, size)``."""
    images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
    masks = np.empty((len(pairs), size, size), dtype=np.float32)
    for i, p in enumerate(pairs):
        win = whole_image_window(*p.mask.shape)
        images[i] = crop(p.image, win, size)
        masks[i] = crop(p.mask.astype(np.float32), win, size)
    return images, masks


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random ``(train, validation)`` split of ``range(n)``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_split) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 to ``(N, 3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255.0


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


def iou_per_image(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of boolean ``(N, ...)`` masks, image by image (1 where both are empty)."""
    axes = tuple(range(1, pred.ndim))
    inter = np.logical_and(pred, target).sum(axis=axes)
    union = np.logical_or(pred, target).sum(axis=axes)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _batches(n: int, batch: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + batch] for i in range(0, n, batch)]


@torch.no_grad()
def evaluate(
    model: UNet256, images: np.ndarray, masks: np.ndarray, batch: int = 8
) -> dict[str, float]:
    """Mean IoU and pixel accuracy of ``model`` (eval mode) at threshold 0.5."""
    model.eval()
    ious, accs = [], []
    for idx in _batches(len(images), batch, None):
        pred = model(to_tensor(images[idx])).numpy()[:, 0] >= 0.5
        target = masks[idx] >= 0.5
        ious.append(iou_per_image(pred, target))
        accs.append((pred == target).mean(axis=(1, 2)))
    return {
        "iou": float(np.concatenate(ious).mean()),
        "accuracy": float(np.concatenate(accs).mean()),
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (a partial file never replaces a good one)."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint, checked for its format."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
    except (OSError, RuntimeError) as e:
        raise ModelError(f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path} is not a meiyan skin U-Net checkpoint")
    return state


def load_model(path: str | Path) -> tuple[UNet256, int]:
    """The model of a checkpoint (eval mode) and its input size."""
    state = load_checkpoint(path)
    model = UNet256(width=state["width"])
    model.load_state_dict(state["model"])
    return model.eval(), int(state["size"])


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train as configured; returns the summary also written to ``OUT/history.json``.

    Seeds torch and NumPy from ``cfg.seed`` and switches torch to deterministic algorithms, so a
    run (or a resumed run) on the same machine repeats exactly.
    """
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(cfg.seed)

    pairs = load_pairs(Path(cfg.data), cfg.skin_labels)
    images, masks = frame_pairs(pairs, cfg.size)
    train_idx, val_idx = split_indices(len(pairs), cfg.val_split, cfg.seed)

    model = UNet256(width=cfg.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs, eta_min=cfg.lr * 0.01)
        if cfg.schedule == "cosine"
        else None
    )
    history: list[dict[str, float]] = []
    best_iou, start = -1.0, 0
    last = out / "last.pt"
    if cfg.resume:
        if not last.is_file():
            raise ModelError(f"--resume: no checkpoint at {last}")
        state = load_checkpoint(last)
        if state["width"] != cfg.width or state["size"] != cfg.size:
            raise ModelError(f"{last} has width {state['width']} and size {state['size']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        history, best_iou, start = state["history"], state["best_iou"], state["epoch"] + 1

    summary: dict[str, Any] = {"config": asdict(cfg), "n_train": len(train_idx),
                               "n_val": len(val_idx)}
    for epoch in range(start, cfg.epochs):
        model.train()
        losses, ious, accs = [], [], []
        bar = tqdm(_batches(len(train_idx), cfg.batch, rng), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not progress, leave=False)
        for idx in bar:
            xs, ys = [], []
            for i in train_idx[idx]:
                img, msk = images[i], masks[i]
                if cfg.augment:
                    img, msk = augment(img, msk, rng)
                xs.append(img)
                ys.append(msk)
            x = to_tensor(np.stack(xs))
            y = torch.from_numpy(np.stack(ys))[:, None]
            logits = model.logits(x)
            loss = loss_value(logits, y, cfg.loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            pred = (logits.detach() >= 0).numpy()[:, 0]
            target = np.stack(ys) >= 0.5
            ious.append(float(iou_per_image(pred, target).mean()))
            accs.append(float((pred == target).mean()))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", iou=f"{np.mean(ious):.4f}")
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "iou": float(np.mean(ious)),
               "accuracy": float(np.mean(accs))}
        if len(val_idx):
            val = evaluate(model, images[val_idx], masks[val_idx], cfg.batch)
            row |= {"val_iou": val["iou"], "val_accuracy": val["accuracy"]}
        history.append(row)
        score = row.get("val_iou", row["iou"])
        improved = score > best_iou
        best_iou = max(best_iou, score)
        state = {
            "format": CHECKPOINT_FORMAT, "width": cfg.width, "size": cfg.size,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch": epoch, "best_iou": best_iou, "history": history,
            "config": asdict(cfg), "rng": _rng_state(rng),
        }
        save_checkpoint(last, state)
        if improved:
            save_checkpoint(out / "best.pt", state)
        if progress:
            shown = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in row.items())
            tqdm.write(f"{shown}{' *' if improved else ''}")
    summary |= {"history": history, "best_iou": best_iou}
    (out / "history.json").write_text(json.dumps(summary, indent=1))
    return summary
