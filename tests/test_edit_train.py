"""SC-FEGAN training (issue 13): data preparation, one training step, export."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from meiyan.train.sc_fegan_data import (
    PARTS,
    Prepared,
    SCFEGANDataset,
    brush_strokes,
    find_faces,
    prepare,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CELEBA = SHARED / "celeba-hq-1k" / "validation"


def _faces_folder(root: Path, n: int = 3, side: int = 160) -> Path:
    """Synthetic photos (an ellipse 'face' with 'eyes' on a gradient) with hair masks."""
    (root / "images").mkdir(parents=True)
    (root / "hair").mkdir()
    rng = np.random.default_rng(7)
    for i in range(n):
        yy, xx = np.mgrid[:side, :side]
        img = np.dstack([xx * 200 // side, yy * 200 // side, np.full_like(xx, 90)]).astype(np.uint8)
        cv2.ellipse(img, (side // 2, side // 2 + 10), (40, 55), 0, 0, 360,
                    tuple(int(v) for v in rng.integers(120, 230, 3)), -1)
        for x in (side // 2 - 18, side // 2 + 18):
            cv2.circle(img, (x, side // 2), 6, (30, 30, 30), -1)
        hair = np.zeros((side, side), np.uint8)
        cv2.ellipse(hair, (side // 2, side // 2 - 40), (50, 25), 0, 0, 360, 255, -1)
        img[hair > 0] = (60, 40, 20)
        cv2.imwrite(str(root / "images" / f"f{i}.png"), img[..., ::-1])
        cv2.imwrite(str(root / "hair" / f"f{i}.png"), hair)
    return root


def test_prepare_is_deterministic_and_shaped(tmp_path: Path) -> None:
    root = _faces_folder(tmp_path / "faces")
    a = prepare(root, 128, use_hed=False, cache=tmp_path / "a")
    b = prepare(root, 128, use_hed=False, cache=tmp_path / "b")
    assert a.blobs == b.blobs and a.names == ["f0", "f1", "f2"] and a.sketch_method == "canny"
    cached = prepare(root, 128, use_hed=False, cache=tmp_path / "a")
    assert cached.blobs == a.blobs
    s = a.sample(0)
    assert s["photo"].shape == (128, 128, 3) and s["colour"].shape == (128, 128, 3)
    assert s["labels"].shape == (128, 128) and s["labels"].max() < len(PARTS)
    assert (s["labels"] == PARTS.index("hair")).mean() > 0.05
    assert s["sketch"].dtype == np.bool_ and 0 < s["sketch"].mean() < 0.2
    hair = s["labels"] == PARTS.index("hair")
    assert len(np.unique(s["colour"][hair].reshape(-1, 3), axis=0)) == 1  # one median colour


def test_training_samples_are_seeded_and_inside_the_hole(tmp_path: Path) -> None:
    data = prepare(_faces_folder(tmp_path / "faces"), 128, use_hed=False, cache=tmp_path)
    one, again, other = (SCFEGANDataset(data, seed)[1] for seed in (1, 1, 2))
    for key in one:
        assert np.array_equal(one[key].numpy(), again[key].numpy())
    assert any(not np.array_equal(one[k].numpy(), other[k].numpy()) for k in one)
    assert one["image"].shape == (3, 128, 128) and one["mask"].shape == (1, 128, 128)
    mask = one["mask"].numpy()
    assert mask.any() and set(np.unique(mask)) <= {0.0, 1.0}
    assert (one["sketch"].numpy() <= mask).all() and (one["strokes"].numpy() <= mask).all()
    assert one["image"].min() >= -1 and one["image"].max() <= 1
    strokes = brush_strokes(np.random.default_rng(3), 256)
    assert np.array_equal(strokes, brush_strokes(np.random.default_rng(3), 256))
    assert 0.01 < strokes.mean() < 0.9


def test_cropped_samples_hold_part_of_the_hole(tmp_path: Path) -> None:
    from meiyan.train.tasks.sc_fegan import SCFEGANConfig

    data = prepare(_faces_folder(tmp_path / "faces", side=256), 256, use_hed=False,
                   cache=tmp_path)
    full, cropped = SCFEGANDataset(data, 4), SCFEGANDataset(data, 4, crop=128)
    for i in range(len(data)):
        item = cropped[i]
        assert {k: tuple(v.shape[1:]) for k, v in item.items()} == {k: (128, 128) for k in item}
        assert item["mask"].sum() > 0 and (item["sketch"] <= item["mask"]).all()
        assert item["mask"].sum() <= full[i]["mask"].sum()
    with pytest.raises(ValueError, match="crop must be a multiple of 128"):
        SCFEGANConfig(data="x", size=256, crop=192).validate()


def test_a_second_phase_starts_from_the_first(tmp_path: Path) -> None:
    import torch

    from meiyan.train.tasks.sc_fegan import SCFEGANConfig, SCFEGANTask, load_generator
    from meiyan.train.trainer import Trainer, TrainerConfig

    root = _faces_folder(tmp_path / "faces", n=4)
    options = {"data": str(root), "size": 128, "width": 1 / 32, "hed": False, "val_split": 0.25,
               "warmup_epochs": 1}
    cfg = TrainerConfig(out=str(tmp_path / "one"), epochs=1, batch=3, workers=0,
                        device="cpu", threads=1)
    Trainer(SCFEGANTask(SCFEGANConfig(**options)), cfg).fit(progress=False)
    first, _ = load_generator(tmp_path / "one" / "last.pt")
    second = SCFEGANTask(SCFEGANConfig(**options, lr=1e-5, init=str(tmp_path / "one" / "last.pt")))
    second.nets = second.build_networks()
    second.build_optimizers(1)
    for key, value in first.state_dict().items():
        assert torch.equal(second.nets["generator"].state_dict()[key], value)
    wide = SCFEGANTask(SCFEGANConfig(**{**options, "width": 1 / 16},
                                     init=str(tmp_path / "one" / "last.pt")))
    wide.nets = wide.build_networks()
    with pytest.raises(ValueError, match="has width"):
        wide.build_optimizers(1)


def test_prepared_file_round_trip(tmp_path: Path) -> None:
    data = prepare(_faces_folder(tmp_path / "faces"), 128, use_hed=False, cache=tmp_path)
    joined = Prepared.joined(data.subset([0, 1]), data.subset([2]))
    joined.save(tmp_path / "one.npz")
    back = Prepared.load(tmp_path / "one.npz")
    assert back.holdout == 1 and back.names == data.names and back.blobs == data.blobs


@pytest.mark.slow
def test_one_training_step_export_and_edit(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from meiyan.edit import edit
    from meiyan.errors import ModelError
    from meiyan.train.tasks.sc_fegan import SCFEGANConfig, SCFEGANTask
    from meiyan.train.trainer import Trainer, TrainerConfig, compact_checkpoint, load_task
    from meiyan.train.vgg import hed_weights_path

    try:
        hed_weights_path()
    except ModelError as e:
        pytest.skip(f"no VGG-16 weights for the loss network: {e}")
    root = _faces_folder(tmp_path / "faces", n=4)
    task = SCFEGANTask(SCFEGANConfig(data=str(root), size=128, width=1 / 32, hed=False,
                                     perceptual_size=64, val_split=0.25,
                                     samples=str(tmp_path / "run" / "samples")))
    cfg = TrainerConfig(out=str(tmp_path / "run"), epochs=1, batch=3, workers=0, device="cpu",
                        threads=1)
    summary = Trainer(task, cfg).fit(progress=False)
    losses = summary["history"][0]["losses"]
    assert {"g_perceptual", "g_style", "g_adversarial", "d_gradient_penalty"} <= set(losses)
    assert np.isfinite(summary["best"]["value"])
    assert (tmp_path / "run" / "samples" / "epoch_001.jpg").is_file()
    small = compact_checkpoint(tmp_path / "run" / "best.pt", tmp_path / "small.pt")
    diff = load_task(small, "sc-fegan").export(tmp_path / "g.onnx")
    assert diff < 1e-3
    photo = cv2.imread(str(root / "images" / "f0.png"))[..., ::-1].copy()
    hole = np.zeros(photo.shape[:2], bool)
    hole[60:100, 50:110] = True
    out = edit(photo, hole, weights=tmp_path / "g.onnx", faces=[])
    assert np.array_equal(out[~hole], photo[~hole]) and not np.array_equal(out, photo)


def test_part_labels_on_a_real_face(tmp_path: Path) -> None:
    if not CELEBA.is_dir():
        pytest.skip(f"{CELEBA} not found (../shared/data or $MEIYAN_DATA)")
    sources = find_faces(CELEBA)
    assert len(sources) == 153 and all(s.hair is not None for s in sources)
    data = prepare(CELEBA, 256, use_hed=False, limit=1, cache=tmp_path)
    labels = data.sample(0)["labels"]
    for part in ("skin", "hair", "eyes", "eyebrows", "nose", "lips"):
        assert (labels == PARTS.index(part)).any(), part
