"""Skin training data of several datasets: readers, framing, the pack, augmentation, the
ignored pixels in the loss, initial weights from the exported model, the GPU run's files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from meiyan.train.augment import augment_framed  # noqa: E402
from meiyan.train.skin_data import (  # noqa: E402
    IGNORE,
    STORED,
    Labelled,
    Pack,
    frame,
    pack,
    read_celeba,
    read_fasseg,
    read_lfw,
)
from meiyan.train.tasks.skin_unet import (  # noqa: E402
    SkinUNetConfig,
    SkinUNetTask,
    initial_weights,
    loss_value,
    to_input,
)

REPO = Path(__file__).resolve().parents[1]


def _photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """A skin-toned disc on a textured background, uint8 RGB."""
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    cv2.circle(img, (size // 2, size // 2), size // 4, (220, 170, 140), -1)
    return img


def _fake_shared(root: Path, n: int = 3) -> Path:
    """The three datasets' layouts with ``n`` synthetic photos per split."""
    rng = np.random.default_rng(0)
    layouts = {"lfw-parts": ("train", "validation"), "fasseg-multipose": ("train", "test"),
               "celeba-hq-1k": ("train", "validation")}
    for folder, splits in layouts.items():
        for split in splits:
            base = root / folder / split
            masks = base / ("hair" if folder == "celeba-hq-1k" else "labels")
            (base / "images").mkdir(parents=True)
            masks.mkdir()
            for i in range(n):
                img = _photo(rng, 96)
                labels = np.zeros((96, 96), np.uint8)
                cv2.circle(labels, (48, 48), 24, 1, -1)
                labels[:10] = 2  # hair along the top
                if folder == "celeba-hq-1k":
                    labels = np.where(labels == 2, 255, 0).astype(np.uint8)
                cv2.imwrite(str(base / "images" / f"p{i}.jpg"), img[..., ::-1])
                cv2.imwrite(str(masks / f"p{i}.png"), labels)
    return root


def test_readers_map_labels_to_one_convention(tmp_path: Path) -> None:
    root = _fake_shared(tmp_path)
    lfw = next(read_lfw(root / "lfw-parts", "train"))
    fas = next(read_fasseg(root / "fasseg-multipose", "train"))
    cel = next(read_celeba(root / "celeba-hq-1k", "train"))
    assert lfw.target[48, 48] == 1 and lfw.target[5, 48] == 0 and lfw.target[90, 5] == 0
    assert fas.target[48, 48] == 1 and fas.target[5, 48] == 0
    # CelebA-HQ: hair is never skin, everything else unknown until the landmarks say.
    assert cel.target[5, 48] == 0 and cel.target[48, 48] == IGNORE


def test_fasseg_features_are_skin_for_the_network() -> None:
    labels = np.array([[0, 1, 2, 3, 4, 5]], np.uint8)
    target = np.isin(labels, (1, 3, 4, 5)).astype(np.uint8)  # as read_fasseg maps them
    assert target.tolist() == [[0, 1, 0, 1, 1, 1]]


def test_frame_without_face_letterboxes_with_context() -> None:
    rng = np.random.default_rng(1)
    target = np.zeros((80, 120), np.uint8)
    target[20:60, 40:80] = 1
    item = Labelled("lfw", "train", "x", _photo(rng, 120)[:80], target)
    framed = frame(item, faces=[])
    assert framed.image.shape == (STORED, STORED, 3) and framed.target.shape == (STORED, STORED)
    # The letterbox of 120 px, widened by the context, fills the stored square: outside the
    # photo the target is 0 (not skin), and the skin square stays in the centre.
    assert framed.target[0, 0] == 0 and framed.target[STORED // 2, STORED // 2] == 1
    assert set(np.unique(framed.target)) <= {0, 1}


@pytest.mark.slow
def test_pack_round_trip_and_training_step(tmp_path: Path) -> None:
    root = _fake_shared(tmp_path / "shared")
    counts = pack(root, tmp_path / "pack.npz")
    assert counts == {f"{d}/{s}": 3 for d, ss in {"lfw": ("train", "validation"),
                      "fasseg": ("train", "test"), "celeba": ("train", "validation")}.items()
                      for s in ss}
    p = Pack(tmp_path / "pack.npz")
    assert len(p) == 18 and len(p.indices("fasseg", "test")) == 3
    item = p[int(p.indices("lfw", "train")[0])]
    assert item.image.shape == (STORED, STORED, 3) and item.target.dtype == np.uint8

    task = SkinUNetTask(SkinUNetConfig(data=str(tmp_path / "pack.npz"), val_split=0.34,
                                       width=1 / 16, size=64, loss="bce+dice"))
    train, val = task.datasets()
    # One of three photos of each dataset is held out; the others are repeated so that each
    # dataset gives at least a quarter of the largest one's samples.
    assert len(val) == 3 and len(train) == 6
    image, mask, weight, _ = train[0]
    assert image.shape == (64, 64, 3) and mask.shape == weight.shape == (64, 64)
    assert task.best_metric == "val_iou"
    calibration = task._calibration_images(4)  # what --init re-estimates BatchNorm on
    assert calibration.shape == (4, 3, 64, 64)
    from meiyan.train.trainer import Trainer, TrainerConfig

    cfg = TrainerConfig(out=str(tmp_path / "run"), epochs=1, batch=2, workers=0, device="cpu",
                        threads=1)
    summary = Trainer(task, cfg).fit(progress=False)
    metrics = summary["history"][0]["metrics"]
    assert {"val_iou_lfw", "val_iou_fasseg", "val_iou_celeba"} <= set(metrics)
    from meiyan.train.skin_gpu import held_out_iou
    from meiyan.train.trainer import compact_checkpoint, load_task

    small = compact_checkpoint(tmp_path / "run" / "best.pt", tmp_path / "small.pt")
    scores = held_out_iou(load_task(small, "skin-unet"), p)
    assert set(scores) == {"fasseg", "lfw", "celeba"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_min_share_repeats_the_smaller_datasets(tmp_path: Path) -> None:
    """Each dataset of a pack gives at least ``min_share`` of the largest one's samples per
    epoch: LFW 8 training photos, FASSEG and CelebA 2 each."""
    root = _fake_shared(tmp_path / "shared", n=8)
    for folder in ("fasseg-multipose", "celeba-hq-1k"):
        for photo in sorted((root / folder / "train" / "images").glob("*.jpg"))[2:]:
            photo.unlink()
    pack(root, tmp_path / "pack.npz", ("lfw", "fasseg", "celeba"))
    for share, expected in ((0.25, {"lfw": 8, "fasseg": 2, "celeba": 2}),
                            (0.5, {"lfw": 8, "fasseg": 4, "celeba": 4}),
                            (1.0, {"lfw": 8, "fasseg": 8, "celeba": 8})):
        task = SkinUNetTask(SkinUNetConfig(data=str(tmp_path / "pack.npz"), val_split=0.0,
                                           width=1 / 16, size=64, min_share=share))
        train, _ = task.datasets()
        names = train.pack.dataset[train.indices].tolist()
        assert {d: names.count(d) for d in expected} == expected, share
    with pytest.raises(ValueError, match="min_share"):
        SkinUNetConfig(data="x", min_share=0.0).validate()


def test_ignored_pixels_leave_the_loss() -> None:
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    weight = torch.ones_like(target)
    weight[:, :, :4] = 0
    changed = target.clone()
    changed[:, :, :4] = 1 - changed[:, :, :4]  # labels flipped where ignored
    for kind in ("bce", "dice", "bce+dice"):
        a = loss_value(logits, target, kind, weight)
        b = loss_value(logits, changed, kind, weight)
        assert torch.allclose(a, b), kind
        assert not torch.allclose(loss_value(logits, target, kind),
                                  loss_value(logits, changed, kind)), kind


def test_augment_framed_keeps_photo_and_target_aligned() -> None:
    img = np.zeros((STORED, STORED, 3), np.uint8)
    target = np.zeros((STORED, STORED), np.uint8)
    cv2.rectangle(img, (100, 120), (200, 220), (230, 180, 150), -1)
    cv2.rectangle(target, (100, 120), (200, 220), 1, -1)
    target[:20] = IGNORE
    for seed in range(20):
        out, t = augment_framed(img, target, 128, 256, np.random.default_rng(seed))
        assert out.shape == (128, 128, 3) and t.shape == (128, 128)
        assert set(np.unique(t)) <= {0, 1, IGNORE}
        skin = t == 1
        if skin.sum() > 50:  # where the target says skin the photo is bright, not background
            assert out[skin].mean() > 3 * max(out[t == 0].mean(), 1.0) or skin.mean() > 0.5


def test_initial_weights_from_the_exported_model_compute_the_same() -> None:
    ort = pytest.importorskip("onnxruntime")
    from meiyan.skin.unet import UNet256

    model = REPO / "src" / "meiyan" / "models" / "skin_unet.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    width = float(session.get_modelmeta().custom_metadata_map["meiyan.width"])
    rng = np.random.default_rng(0)
    images = np.stack([cv2.GaussianBlur(_photo(rng, 64), (0, 0), 2) for _ in range(6)])
    x = to_input(torch.from_numpy(images))
    unet = UNet256(width)
    initial_weights(unet, model, x[:4])
    with torch.no_grad():
        ours = unet.eval()(x[4:]).numpy()
    ref = session.run(None, {session.get_inputs()[0].name: x[4:].numpy()})[0]
    assert np.abs(ours - ref).max() < 1e-4
