"""PSGAN training without MT (issue 16, item 4): synthetic triples, the task, export, resume."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from meiyan.makeup.looks import Look
from meiyan.makeup.psgan.engine import AlignedFace, network_inputs, region_masks, warp_reference
from meiyan.makeup.psgan.landmarks68 import to_ibug68
from meiyan.makeup.regions import makeup_masks
from meiyan.train.psgan_data import (
    CRITIC_SIZES,
    FacePack,
    draw_triple,
    make_triple,
    pack,
    random_look,
)

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
LAYER_MASKS = {"lips": ("lips",), "eyes": ("eye_shadow", "eyeliner"), "skin": ("skin",),
               "brows": ("brows",), "blush": ("blush",)}


def _photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)


def _variants(image: np.ndarray) -> list[np.ndarray]:
    """The sample as different-looking photos: mirrored, zoomed, recoloured, turned."""
    h, w = image.shape[:2]
    zoom = cv2.resize(image[40 : h - 40, 60 : w - 20], (w, h), interpolation=cv2.INTER_AREA)
    shift = np.array([18, 4, -14], np.int16)
    warm = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    turn = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 8, 1.0), (w, h),
                          borderMode=cv2.BORDER_REFLECT)
    return [image, image[:, ::-1], zoom, warm, turn]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in shared data folder: three training and two validation photos of CelebA."""
    root = tmp_path_factory.mktemp("shared")
    photos = _variants(_photo())
    for split, chosen in (("train", photos[:3]), ("validation", photos[3:])):
        folder = root / "celeba-hq-1k" / split / "images"
        folder.mkdir(parents=True)
        for i, image in enumerate(chosen):
            cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def packed(shared: Path) -> Path:
    out = shared / "pack.npz"
    counts = pack(shared, out, ("celeba",), holdout=2)
    assert counts == {"celeba/train": 3, "celeba/holdout": 2}
    return out


def test_random_looks_are_seeded_and_varied() -> None:
    a = random_look(np.random.default_rng(5))
    assert a == random_look(np.random.default_rng(5))
    looks = [random_look(np.random.default_rng(s)) for s in range(40)]
    kinds = [tuple(type(layer).__name__ for layer in look.layers) for look in looks]
    assert len(set(kinds)) > 5 and len({look.layers for look in looks}) == 40
    finishes = {layer.finish for look in looks for layer in look.layers if hasattr(layer, "finish")}
    assert finishes == {"gloss", "matte"}
    assert all(any(type(x).__name__ in ("Lipstick", "Eyeshadow") for x in look.layers)
               for look in looks)


def test_triples_are_deterministic_by_seed(packed: Path) -> None:
    faces = FacePack(packed)
    ids = faces.indices(False)
    a = draw_triple(faces, ids, 1, np.random.default_rng([0, 3]), worn=0.5)
    b = draw_triple(faces, ids, 1, np.random.default_rng([0, 3]), worn=0.5)
    c = draw_triple(faces, ids, 1, np.random.default_rng([0, 4]), worn=0.5)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["target"], c["target"])
    assert a["source"].shape == a["target"].shape == (3, 256, 256)
    assert a["critic_masks"].shape == (3, 256, 256) and a["critic_boxes"].shape == (5, 2)
    for (y, x), region in zip(a["critic_boxes"], ("brow", "brow", "eye", "eye", "lip"),
                              strict=True):
        h, w = CRITIC_SIZES[region]
        assert 0 <= y <= 256 - h and 0 <= x <= 256 - w


def test_target_differs_from_the_source_only_where_the_look_paints(packed: Path) -> None:
    faces = FacePack(packed)
    source, reference = faces.face(0), faces.face(1)
    look = random_look(np.random.default_rng(11))
    sample = make_triple(source, reference, look)
    soft = makeup_masks(source.points, (256, 256), soft=True)
    painted = np.zeros((256, 256), bool)
    for layer in look.layers:
        for part in LAYER_MASKS[layer.region]:
            painted |= soft[part] > 0
    change = np.abs(sample["target"] - sample["source"]).max(axis=0)
    assert np.array_equal(sample["source"], source.rgb.transpose(2, 0, 1))
    assert change[~painted].max() == 0.0
    assert change[painted].mean() > 0.005
    lips = soft["lips"] > 0.9
    assert change[lips].mean() > 0.02  # every drawn look but the rare lipstick-free one


def test_inputs_masks_and_landmarks_are_the_engines(shared: Path, packed: Path) -> None:
    from meiyan.face import analyze
    from meiyan.train.datasets import read_rgb

    image = read_rgb(shared / "celeba-hq-1k" / "train" / "images" / "0.jpg")
    engine = AlignedFace.of(image, analyze(image)[0].landmarks)
    faces = FacePack(packed)
    stored = faces.face(0)
    assert np.abs(stored.points - engine.points).max() < 1e-3
    assert np.array_equal(stored.masks, region_masks(stored.points))
    assert (stored.masks == engine.masks).mean() > 0.9999
    assert np.abs(stored.rgb - engine.rgb).mean() < 0.01  # JPEG
    reference = faces.face(3)
    sample = make_triple(stored, reference, Look("bare", "", ()))
    expected = network_inputs(stored, *warp_reference(reference, stored))
    assert all(np.array_equal(sample[k], v) for k, v in expected.items())
    assert np.array_equal(sample["target"], sample["source"])
    assert np.allclose(sample["source_landmarks"], to_ibug68(stored.points))


def _vgg(path: Path) -> Path:
    """Random VGG-16 weights in torchvision's layout (the loss network's shapes, no download)."""
    import torch

    g = torch.Generator().manual_seed(0)
    state = {}
    chain = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256))
    for i, (c_in, c_out) in zip((0, 2, 5, 7, 10, 12, 14), chain, strict=True):
        state[f"features.{i}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.05
        state[f"features.{i}.bias"] = torch.zeros(c_out)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def trained(packed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One cheap warm-up epoch, then a resumed second epoch with every loss, on two triples."""
    from meiyan.train.tasks.psgan import PSGANConfig, PSGANTask
    from meiyan.train.trainer import Trainer, TrainerConfig

    root = tmp_path_factory.mktemp("psgan-run")
    config = PSGANConfig(data=str(packed), warmup_epochs=1, limit=2, val_limit=2,
                         vgg=str(_vgg(root / "vgg.pth")))

    def run(epochs: int, resume: bool) -> dict:
        cfg = TrainerConfig(out=str(root / "run"), epochs=epochs, batch=2, workers=0,
                            device="cpu", threads=2, resume=resume)
        return Trainer(PSGANTask(config), cfg).fit(progress=False)

    first = run(1, False)
    second = run(2, True)
    return {"root": root, "first": first, "second": second}


@pytest.mark.slow
def test_an_epoch_writes_checkpoints_and_resume_adds_the_full_loss(trained: dict) -> None:
    run = trained["root"] / "run"
    first, second = trained["first"]["history"], trained["second"]["history"]
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert len(first) == 1 and second[0] == first[0] and len(second) == 2
    assert set(first[0]["losses"]) == {"g_target", "g_cycle", "g_total", "psnr"}
    full = second[1]["losses"]
    for key in ("g_identity", "g_perceptual", "g_makeup", "g_adversarial", "g_regions",
                "d_makeup", "d_bare", "d_regions"):
        assert np.isfinite(full[key]), key
    metrics = second[1]["metrics"]
    assert set(metrics) == {"val_psnr", "val_psnr_engine", "val_psnr_source"}
    assert metrics["val_psnr_source"] > 15


@pytest.mark.slow
def test_export_gives_an_onnx_the_engine_runs(trained: dict) -> None:
    from click.testing import CliRunner

    from meiyan.cli.train_cmds import export
    from meiyan.makeup.faces import find_faces
    from meiyan.makeup.psgan.engine import PsganEngine
    from meiyan.makeup.transfer import Reference

    model = trained["root"] / "psgan.onnx"
    result = CliRunner().invoke(
        export, ["psgan", str(trained["root"] / "run" / "last.pt"), "-o", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert float(result.output.rsplit("=", 1)[1].strip(" )\n")) < 1e-3
    image = _photo()
    ref_image = np.ascontiguousarray(image[:, ::-1])
    engine = PsganEngine(model)
    reference = Reference.of(ref_image)
    out = engine(image, find_faces(image), {"lips": 1.0, "eyes": 1.0}, refs={
        "lips": reference, "eyes": reference})
    assert out.shape == image.shape and out.dtype == np.uint8
