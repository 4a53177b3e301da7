"""Training of ABPN (:mod:`meiyan.retouch.abpn.network`) on synthetic defects, on the trainer.

T. Lei et al., "ABPN: Adaptive Blend Pyramid Network for Real-Time Local Retouching of Ultra
High-Resolution Photo", CVPR 2022. The pairs are clean faces and the same faces with defects
drawn into their skin (:mod:`meiyan.train.defects`); the faces are prepared once into one
compact file (:func:`build_faces_file`: JPEG photos, PNG skin masks, under-eye ellipses) that
also feeds the GPU script. Training faces: ``celeba-hq-1k/train`` and FASSEG ``train``;
validation faces: ``celeba-hq-1k/validation`` and FASSEG ``test`` (the portraits are never
used). Each training sample is a random ``size`` crop at a random scale, flipped at random;
moles are removed from the target of a share ``moles_p`` of the samples (the ``moles`` input
is 1 there).

Loss (Adam, cosine schedule; D. P. Kingma and J. Ba, ICLR 2015; I. Loshchilov and F. Hutter,
"SGDR", ICLR 2017): L1 to the clean face at full resolution, weighted up on the defects; L1 of
the LRL's quarter-resolution image; binary cross-entropy of the blemish mask; and L1 of the
finest Laplacian band outside the (dilated) small defects, so that pores and fine texture are
kept. ``best.pt`` is the epoch with the largest validation gain in PSNR at the defects.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from meiyan.errors import ModelError
from meiyan.retouch.abpn.network import ABPN, MULTIPLE, Output
from meiyan.train.defects import FaceSample, prepare, synthesize
from meiyan.train.export import export_onnx
from meiyan.train.trainer import EpochDataset, Task, load_checkpoint, load_task, unwrap

TRAIN = (("celeba-hq-1k/train/images", "*.jpg"), ("fasseg-multipose/train/images", "*.jpg"))
VALIDATION = (
    ("celeba-hq-1k/validation/images", "*.jpg"),
    ("fasseg-multipose/test/images", "*.jpg"),
)
JPEG_QUALITY = 90
_DEFECT = 0.05  # opacity above which a pixel is a defect pixel
STAGES = ("all", "lrl")


def _encode(array: np.ndarray, fmt: str, quality: int = JPEG_QUALITY) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return np.frombuffer(buf.getvalue(), np.uint8)


def write_faces_file(
    out: Path,
    samples: list[FaceSample],
    names: list[str],
    split: list[int],
    quality: int = JPEG_QUALITY,
    levels: int = 256,
) -> Path:
    """Write faces to one ``.npz``: JPEG photos at ``quality``, PNG skin masks quantised to
    ``levels`` grey levels, under-eye ellipses, names and the split (0 train, 1 validation)."""
    blobs: dict[str, list[np.ndarray]] = {"image": [], "skin": []}
    step = 255 / (levels - 1)
    for s in samples:
        blobs["image"].append(_encode(np.round(s.image * 255).astype(np.uint8), "JPEG", quality))
        skin = np.round(np.round(s.skin * 255 / step) * step).astype(np.uint8)
        blobs["skin"].append(_encode(skin, "PNG"))
    arrays = {}
    for key, items in blobs.items():
        arrays[f"{key}_bytes"] = np.concatenate(items)
        arrays[f"{key}_offsets"] = np.cumsum([0, *(len(b) for b in items)]).astype(np.int64)
    eyes = np.stack([np.asarray(s.under_eyes, np.float32).reshape(-1, 4) for s in samples])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays, eyes=eyes, names=np.array(names), split=np.array(split, np.int8))
    return out


def build_faces_file(data: Path, out: Path, limit: int | None = None) -> Path:
    """Prepare every training and validation face of ``data`` (``../shared/data``) into one
    faces file (:func:`write_faces_file`), skin masks from :func:`meiyan.train.defects.prepare`;
    ``limit`` faces per folder; faces without a face found are left out."""
    from meiyan.io.image import read_image

    samples, names, split = [], [], []
    for part, folders in enumerate((TRAIN, VALIDATION)):
        for folder, pattern in folders:
            paths = sorted((data / folder).glob(pattern))[:limit]
            if not paths:
                raise ModelError(f"no faces in {data / folder}")
            for path in paths:
                sample = prepare(read_image(path).pixels)
                if sample.under_eyes:
                    samples.append(sample)
                    names.append(f"{folder.split('/')[0]}/{path.stem}")
                    split.append(part)
    return write_faces_file(out, samples, names, split)


def compact_faces_file(
    src: Path, out: Path, quality: int = 80, levels: int = 16, val_count: int = 48
) -> Path:
    """A smaller copy of a faces file (the GPU script's, under 48 MiB): photos re-encoded at
    JPEG ``quality``, skin masks at ``levels`` grey levels, ``val_count`` validation faces."""
    faces = FacesFile(src)
    val = faces.indices(1)
    keep = faces.indices(0) + val[:: max(1, len(val) // max(val_count, 1))][:val_count]
    return write_faces_file(
        out,
        [faces.sample(i) for i in keep],
        [faces.names[i] for i in keep],
        [int(faces.split[i]) for i in keep],
        quality,
        levels,
    )


class FacesFile:
    """The faces of a :func:`build_faces_file` file, decoded one at a time."""

    def __init__(self, path: str | Path) -> None:
        try:
            z = np.load(path)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read faces file {path}: {e}") from e
        self.arrays = {k: z[k] for k in z.files}
        self.names = [str(n) for n in self.arrays["names"]]
        self.split = self.arrays["split"]

    def indices(self, part: int) -> list[int]:
        return [i for i, s in enumerate(self.split) if s == part]

    def _blob(self, key: str, i: int) -> np.ndarray:
        off = self.arrays[f"{key}_offsets"]
        return self.arrays[f"{key}_bytes"][off[i] : off[i + 1]]

    def sample(self, i: int) -> FaceSample:
        rgb = cv2.cvtColor(
            cv2.imdecode(self._blob("image", i), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        )
        skin = cv2.imdecode(self._blob("skin", i), cv2.IMREAD_GRAYSCALE)
        eyes = [tuple(float(v) for v in e) for e in self.arrays["eyes"][i]]
        return FaceSample(rgb.astype(np.float32) / 255.0, skin.astype(np.float32) / 255.0, eyes)


def crop_sample(s: FaceSample, scale: float, x0: int, y0: int, size: int, flip: bool) -> FaceSample:
    """``s`` resized by ``scale``, cut to the square at ``(x0, y0)``, mirrored if ``flip``."""
    h, w = s.skin.shape
    dsize = (max(size, round(w * scale)), max(size, round(h * scale)))
    sx, sy = dsize[0] / w, dsize[1] / h
    image = cv2.resize(
        s.image, dsize, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    skin = cv2.resize(s.skin, dsize, interpolation=cv2.INTER_LINEAR)
    image, skin = image[y0 : y0 + size, x0 : x0 + size], skin[y0 : y0 + size, x0 : x0 + size]
    eyes = [
        ((cx + 0.5) * sx - 0.5 - x0, (cy + 0.5) * sy - 0.5 - y0, rx * sx, ry * sy)
        for cx, cy, rx, ry in s.under_eyes
    ]
    if flip:
        image, skin = image[:, ::-1], skin[:, ::-1]
        eyes = [(size - 1 - cx, cy, rx, ry) for cx, cy, rx, ry in eyes]
    return FaceSample(np.ascontiguousarray(image), np.ascontiguousarray(skin), eyes)


def _item(sample: FaceSample, rng: np.random.Generator, moles_p: float) -> dict[str, torch.Tensor]:
    removed = bool(rng.random() < moles_p)
    d = synthesize(sample, rng, moles_removed=removed)
    chw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # noqa: E731
    return {
        "image": chw(d.image),
        "target": chw(d.target),
        "blemish": torch.from_numpy(d.blemish)[None],
        "tone": torch.from_numpy(d.tone)[None],
        "skin": torch.from_numpy(sample.skin)[None],
        "moles": torch.tensor([1.0 if removed else 0.0]),
    }


class DefectDataset(EpochDataset):
    """Random crops of the faces with fresh defects every epoch (training), or fixed centre
    crops with fixed defects (``crop`` None: validation, seeded by ``seed`` alone)."""

    def __init__(
        self,
        faces: FacesFile,
        indices: list[int],
        size: int,
        moles_p: float,
        train: bool,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.faces, self.ids, self.size, self.moles_p, self.train = (
            faces,
            indices,
            size,
            moles_p,
            train,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.faces.sample(self.ids[index])
        h, w = s.skin.shape
        rng = self.rng(index) if self.train else np.random.default_rng([self.seed, 1, index])
        if self.train:
            scale = float(np.exp(rng.uniform(np.log(0.75), np.log(1.3))))
            scale = max(scale, self.size / min(h, w))
            sw, sh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
            x0, y0 = (
                int(rng.integers(0, sw - self.size + 1)),
                int(rng.integers(0, sh - self.size + 1)),
            )
            s = crop_sample(s, scale, x0, y0, self.size, bool(rng.random() < 0.5))
        else:
            scale = max(1.0, self.size / min(h, w))
            sw, sh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
            s = crop_sample(
                s, scale, (sw - self.size) // 2, (sh - self.size) // 2, self.size, False
            )
        return _item(s, rng, self.moles_p if self.train else 0.0)


@dataclass
class AbpnConfig:
    """Task options of ``meiyan train abpn`` (the trainer's are in ``TrainerConfig``)."""

    faces: str
    size: int = 256
    val_size: int = 352
    val_count: int = 48
    width: int = 32
    lr: float = 2e-3
    moles_p: float = 0.3
    defect_weight: float = 8.0
    spot_weight: float = 0.0
    texture_weight: float = 10.0
    mask_weight: float = 0.1
    low_weight: float = 0.5
    init: str | None = None
    """Initial weights: an ``abpn`` checkpoint or an exported ``abpn`` ONNX model."""
    stage: str = "all"
    """``all``: the whole network; ``lrl``: the local retouching layer alone, on its
    quarter-resolution loss (the pyramid keeps its initial weights)."""

    def validate(self) -> None:
        """Raise ``ValueError`` for options outside their range."""
        if self.size % MULTIPLE or self.val_size % MULTIPLE:
            raise ValueError(f"size and val_size must be multiples of {MULTIPLE}")
        if not 0.0 <= self.moles_p <= 1.0:
            raise ValueError(f"moles_p must be in [0, 1], got {self.moles_p}")
        if self.width < 4:
            raise ValueError(f"width must be at least 4, got {self.width}")
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")


def band0(x: torch.Tensor) -> torch.Tensor:
    """The finest Laplacian band (the network's pyramid: average pooling, bilinear up)."""
    up = functional.interpolate(
        functional.avg_pool2d(x, 2), scale_factor=2.0, mode="bilinear", align_corners=False
    )
    return x - up


def losses(
    out: Output, batch: Mapping[str, torch.Tensor], cfg: AbpnConfig
) -> dict[str, torch.Tensor]:
    """The four loss terms and their weighted sum ``loss``."""
    target, blemish, tone = batch["target"], batch["blemish"], batch["tone"]
    defect = ((blemish > _DEFECT) | (tone > _DEFECT)).float()
    weight = 1.0 + cfg.defect_weight * defect + cfg.spot_weight * (blemish > _DEFECT).float()
    rec = (weight * (out.retouched - target).abs()).mean() / weight.mean()
    low_target = functional.avg_pool2d(target, 4)
    low = (out.low - low_target).abs().mean()
    mask_target = functional.max_pool2d(blemish, 4)
    mask = functional.binary_cross_entropy_with_logits(out.mask_logits, mask_target)
    keep = 1.0 - functional.max_pool2d((blemish > _DEFECT).float(), 9, 1, 4)
    keep = keep * batch["skin"]
    texture = (keep * (band0(out.retouched) - band0(target)).abs()).sum() / (3 * keep.sum() + 1.0)
    total = rec + cfg.low_weight * low + cfg.mask_weight * mask + cfg.texture_weight * texture
    return {"loss": total, "rec": rec, "low": low, "mask": mask, "texture": texture}


def local_losses(
    low: torch.Tensor, logits: torch.Tensor, batch: Mapping[str, torch.Tensor], cfg: AbpnConfig
) -> dict[str, torch.Tensor]:
    """The LRL stage's loss: L1 of the quarter-resolution image to the pooled clean face,
    weighted up on the (pooled) defects, and the blemish mask's cross-entropy."""
    blemish, tone = batch["blemish"], batch["tone"]
    defect = functional.max_pool2d(((blemish > _DEFECT) | (tone > _DEFECT)).float(), 4)
    weight = 1.0 + cfg.defect_weight * defect
    target = functional.avg_pool2d(batch["target"], 4)
    rec = (weight * (low - target).abs()).mean() / weight.mean()
    mask = functional.binary_cross_entropy_with_logits(logits, functional.max_pool2d(blemish, 4))
    return {"loss": rec + cfg.mask_weight * mask, "low": rec, "mask": mask}


def psnr_at(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, peak 1) of ``a`` to ``b`` over the pixels where ``where`` is true, per image."""
    w = where.expand_as(a).float()
    mse = ((a - b) ** 2 * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp(min=1)
    return -10.0 * torch.log10(mse.clamp(min=1e-10))


def initial_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The network weights of an ``abpn`` checkpoint, or of an ``abpn`` ONNX model made by
    :meth:`AbpnTask.export` (its initializers by name, the ABM's scalars from its metadata)."""
    if Path(path).suffix.lower() != ".onnx":
        return load_checkpoint(path, AbpnTask.name)["networks"]["abpn"]
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except (OSError, DecodeError) as e:
        raise ModelError(f"cannot read ONNX model {path}: {e}") from e
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("meiyan.model") != "abpn":
        raise ModelError(f"{path} is not a meiyan abpn model")
    state = {
        t.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(t).copy())
        for t in model.graph.initializer
        if t.name.startswith("net.")
    }
    abm = json.loads(meta["meiyan.abm"])
    state["abm.j"], state["abm.k"] = torch.tensor(abm["j"]), torch.tensor(abm["k"])
    return state


class _Export(nn.Module):
    """ABPN's inference outputs: the blend layer and the blemish mask (quarter resolution)."""

    def __init__(self, net: ABPN) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, image: torch.Tensor, moles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(image, moles)
        return out.layer, torch.sigmoid(out.mask_logits)


class AbpnTask(Task):
    """``meiyan train abpn``: one network ``abpn``, one Adam optimiser ``adam``."""

    name = "abpn"

    def __init__(self, config: AbpnConfig) -> None:
        super().__init__()
        config.validate()
        self.cfg = config

    @property
    def best_metric(self) -> str:
        return "val_gain"

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AbpnTask:
        # A checkpoint's networks replace the initial ones: its init file is not needed.
        return cls(AbpnConfig(**{**config, "init": None}))

    def build_networks(self) -> dict[str, nn.Module]:
        net = ABPN(self.cfg.width)
        if self.cfg.init:
            state = initial_weights(self.cfg.init)
            mine = net.state_dict()
            fresh = any(v.shape != mine[k].shape for k, v in state.items() if k in mine)
            if fresh and self.cfg.stage != "lrl":
                raise ValueError(f"{self.cfg.init} has another LRL width; train --stage lrl first")
            if fresh:  # a new LRL under the initial pyramid
                state = {k: v for k, v in state.items() if not k.startswith("lrl.")}
            net.load_state_dict(state, strict=not fresh)
        return {"abpn": net}

    def build_optimizers(
        self, epochs: int
    ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LRScheduler]]:
        net = self.nets["abpn"]
        params = net.lrl.parameters() if self.cfg.stage == "lrl" else net.parameters()
        adam = torch.optim.Adam(params, lr=self.cfg.lr)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
            adam, epochs, eta_min=self.cfg.lr * 0.02
        )
        return {"adam": adam}, {"cosine": cosine}

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        cfg = self.cfg
        faces = FacesFile(cfg.faces)
        val_ids = faces.indices(1)
        step = max(1, len(val_ids) // max(cfg.val_count, 1))
        train = DefectDataset(faces, faces.indices(0), cfg.size, cfg.moles_p, True, self.seed)
        val = DefectDataset(faces, val_ids[::step][: cfg.val_count], cfg.val_size, 0.0, False)
        return train, (val if len(val) else None)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = self.to_device(batch)
        net = self.train_nets["abpn"]
        if self.cfg.stage == "lrl":
            if net is not unwrap(net):
                raise ValueError("--stage lrl trains in one process (no torchrun)")
            with self.autocast():
                low, logits, _ = net.local(batch["image"], batch["moles"])
            terms = local_losses(low.float(), logits.float(), batch, self.cfg)
            self.optimize(terms["loss"], "adam")
            return {k: v.detach() for k, v in terms.items()}
        with self.autocast():
            out = net(batch["image"], batch["moles"])
        out = Output(*(t.float() for t in out))
        terms = losses(out, batch, self.cfg)
        self.optimize(terms["loss"], "adam")
        return {k: v.detach() for k, v in terms.items()}

    def validate(self, loader: DataLoader) -> dict[str, float]:
        net = self.nets["abpn"]
        gains, after, low_gains = [], [], []
        for batch in loader:
            batch = self.to_device(batch)
            out = net(batch["image"], batch["moles"])
            at = (batch["blemish"] > _DEFECT) | (batch["tone"] > _DEFECT)
            before = psnr_at(batch["image"], batch["target"], at)
            now = psnr_at(out.retouched, batch["target"], at)
            gains.append(now - before)
            after.append(now)
            low_at = functional.max_pool2d(at.float(), 4) > 0
            low_target = functional.avg_pool2d(batch["target"], 4)
            low_gains.append(
                psnr_at(out.low, low_target, low_at)
                - psnr_at(functional.avg_pool2d(batch["image"], 4), low_target, low_at)
            )
        return {
            "val_gain": float(torch.cat(gains).mean()),
            "val_psnr": float(torch.cat(after).mean()),
            "val_low_gain": float(torch.cat(low_gains).mean()),
        }

    def export(self, path: Path) -> float:
        net = ABPN(self.cfg.width)
        net.load_state_dict(self.nets["abpn"].state_dict())
        g = torch.Generator().manual_seed(0)
        example = {"image": torch.rand(1, 3, 128, 128, generator=g), "moles": torch.zeros(1, 1)}
        check = {
            "image": torch.rand(2, 3, 160, 96, generator=g),
            "moles": torch.tensor([[0.0], [1.0]]),
        }
        image_axes = {0: "batch", 2: "height", 3: "width"}
        j, k = (v.detach().tolist() for v in (net.abm.j, net.abm.k))
        return export_onnx(
            _Export(net),
            path,
            example,
            check,
            ["layer", "mask"],
            dynamic_axes={
                "image": image_axes,
                "moles": {0: "batch"},
                "layer": image_axes,
                "mask": {0: "batch", 2: "mh", 3: "mw"},
            },
            metadata={
                "meiyan.model": "abpn",
                "meiyan.multiple": str(MULTIPLE),
                "meiyan.width": str(net.width),
                "meiyan.abm": json.dumps({"j": j, "k": k}),
            },
            doc="meiyan ABPN: (N, 3, H, W) RGB in [0, 1] and (N, 1) moles to the (N, 3, H, W) "
            "blend layer and the (N, 1, H/4, W/4) blemish mask",
        )


def load_model(path: str | Path) -> ABPN:
    """The network of an ``abpn`` checkpoint (eval mode)."""
    return load_task(path, AbpnTask.name).nets["abpn"].eval()
