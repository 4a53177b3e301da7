"""The U-Net skin segmenter: model, data readers, training, export, inference and model files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from meiyan.errors import ModelError
from meiyan.skin.framing import Window, crop, face_window, uncrop, whole_image_window
from meiyan.train.augment import AugmentConfig, augment
from meiyan.train.datasets import detect_layout, load_pairs, read_lfw_parts

SKIN_RGB = (220, 170, 140)


def _write_discs(root: Path, n: int = 8, size: int = 32, seed: int = 0) -> None:
    """Skin-coloured discs on uniform noise, in the plain images/ + masks/ layout."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        centre = tuple(int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
        cv2.circle(mask, centre, int(rng.integers(size // 6, size // 3.5)), 255, -1)
        image[mask > 0] = SKIN_RGB
        cv2.imwrite(str(root / "images" / f"d{i}.png"), image[..., ::-1])
        cv2.imwrite(str(root / "masks" / f"d{i}.png"), mask)


def _train(data: Path, out: Path, epochs: int, *, batch: int = 4, seed: int = 0,
           resume: bool = False, workers: int = 0, **task: object) -> dict:
    """Train a skin U-Net on the CPU with one thread; returns the trainer's summary."""
    from meiyan.train.tasks.skin_unet import SkinUNetConfig, SkinUNetTask
    from meiyan.train.trainer import Trainer, TrainerConfig

    cfg = TrainerConfig(out=str(out), epochs=epochs, batch=batch, workers=workers,
                        device="cpu", seed=seed, threads=1, resume=resume)
    return Trainer(SkinUNetTask(SkinUNetConfig(data=str(data), **task)), cfg).fit(progress=False)


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A width-0.125 U-Net trained to overfit eight 32x32 synthetic pictures."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("discs")
    _write_discs(root / "data")
    summary = _train(root / "data", root / "run", 100, val_split=0.0, width=0.125, size=32,
                     lr=3e-3, augment=False)
    return {"root": root, "data": root / "data", "out": root / "run", "summary": summary}


# --- model ---------------------------------------------------------------------------------


def test_full_width_parameter_count() -> None:
    pytest.importorskip("torch")
    from meiyan.skin.unet import UNet256, count_parameters

    assert count_parameters(UNet256(1.0)) == (34_600_353, 14_016)


def test_width_scales_channels() -> None:
    pytest.importorskip("torch")
    from meiyan.skin.unet import UNet256, count_parameters

    small, _ = count_parameters(UNet256(0.25))
    assert 34_600_353 / 17 < small < 34_600_353 / 15  # parameters scale with width squared


def test_output_shape_and_range() -> None:
    torch = pytest.importorskip("torch")
    from meiyan.skin.unet import UNet256

    model = UNet256(0.125).eval()
    x = torch.rand(2, 3, 64, 96) * 4 - 2  # outside [0, 1] too: the output is still a probability
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, 64, 96)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.slow
def test_small_variant_overfits_synthetic_images(trained: dict) -> None:
    import torch
    from torch.utils.data import DataLoader

    from meiyan.train.datasets import find_pairs
    from meiyan.train.tasks.skin_unet import SkinDataset, evaluate, load_model

    model, size = load_model(trained["out"] / "last.pt")
    data = SkinDataset(find_pairs(trained["data"]), size, augmented=False)
    assert evaluate(model, DataLoader(data, batch_size=8), torch.device("cpu"))["iou"] > 0.95


@pytest.mark.slow
def test_checkpoint_round_trip_and_resume(trained: dict, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from meiyan.train.tasks.skin_unet import load_model
    from meiyan.train.trainer import load_checkpoint

    last = trained["out"] / "last.pt"
    model, size = load_model(last)
    state = load_checkpoint(last, "skin-unet")
    assert size == 32 and state["epoch"] == 100 and len(state["history"]) == 100
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["networks"]["unet"][key])
    assert (trained["out"] / "best.pt").is_file()
    assert len((trained["out"] / "log.jsonl").read_text().splitlines()) == 100

    # Two epochs, then a resumed third, equal three epochs in one go (seeded, deterministic).
    common = dict(batch=4, val_split=0.25, width=0.125, size=32, seed=3)
    _train(trained["data"], tmp_path / "a", 2, **common)
    resumed = _train(trained["data"], tmp_path / "a", 3, resume=True, **common)
    straight = _train(trained["data"], tmp_path / "b", 3, **common)
    assert _without_times(resumed["history"]) == _without_times(straight["history"])
    a, _ = load_model(tmp_path / "a" / "last.pt")
    b, _ = load_model(tmp_path / "b" / "last.pt")
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key


def test_not_a_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from meiyan.train.tasks.skin_unet import load_model

    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ModelError, match="not a meiyan training checkpoint"):
        load_model(tmp_path / "x.pt")


# --- export and inference ------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_matches_torch(trained: dict, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from click.testing import CliRunner

    from meiyan.cli.train_cmds import export
    from meiyan.skin.unet_onnx import UNetSkinSegmenter
    from meiyan.train.tasks.skin_unet import load_model

    ckpt = trained["out"] / "last.pt"
    onnx_path = tmp_path / "m.onnx"
    result = CliRunner().invoke(export, ["skin-unet", str(ckpt), "-o", str(onnx_path)])
    assert result.exit_code == 0, result.output
    model, _ = load_model(ckpt)
    seg = UNetSkinSegmenter(onnx_path)
    assert seg.size == 32
    x = np.random.default_rng(1).random((3, 3, 64, 32), dtype=np.float32)
    got = seg.session.run(None, {seg.input_name: x})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_segmenter_runs_without_torch(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    """Import and run the shipped segmenter with torch made unimportable."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, meiyan, meiyan.skin, meiyan.models, meiyan.cli.train_cmds\n"
        "from meiyan.skin.unet_onnx import UNetSkinSegmenter\n"
        "img = np.load(sys.argv[1])\n"
        "m = UNetSkinSegmenter()(img, [])\n"
        "assert m.shape == img.shape[:2] and m.dtype == np.float32, (m.shape, m.dtype)\n"
        "assert 0 <= m.min() and m.max() <= 1 and 0.02 < (m > 0.5).mean() < 0.6\n"
        "assert sys.modules['torch'] is None\n"
    )
    path = tmp_path / "sample.npy"
    np.save(path, sample_rgb)
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_shipped_model_on_fasseg_test(real_data: Path) -> None:
    """The registered ``unet`` (faces found and framed) reaches 0.90 mean IoU on FASSEG test."""

    test_dir = real_data / "fasseg-multipose" / "test"
    if not test_dir.is_dir():
        pytest.skip(f"{test_dir} not found (../shared/data or $MEIYAN_DATA)")
    from meiyan.skin import skin_mask

    ious = []
    for pair in load_pairs(test_dir):
        pred = skin_mask(pair.image, "unet") >= 0.5
        ious.append((pred & pair.mask).sum() / max((pred | pair.mask).sum(), 1))
    assert len(ious) == 92
    assert np.mean(ious) >= 0.90


# --- framing and augmentation --------------------------------------------------------------


def test_letterbox_round_trip() -> None:
    mask = np.zeros((90, 60), np.float32)
    mask[20:70, 10:40] = 1.0
    win = whole_image_window(90, 60)
    assert win.box == (-15, 0, 75, 90)
    small = crop(mask, win, 32)
    assert small.shape == (32, 32)
    back = uncrop(small, win, 90, 60)
    assert back.shape == (90, 60)
    assert ((back >= 0.5) == (mask >= 0.5)).mean() > 0.97


def test_uncrop_feathers_only_edges_inside_the_image() -> None:
    ones = np.ones((16, 16), np.float32)
    inner = uncrop(ones, Window(10, 10, 50, 50), 100, 100, feather=0.1)
    assert inner[30, 30] == 1.0 and inner[30, 10] < 0.2 and inner[10, 30] < 0.2
    assert inner[5, 5] == 0.0 and inner[60, 60] == 0.0
    corner = uncrop(ones, Window(0, 0, 40, 40), 100, 100, feather=0.1)  # top and left on the border
    assert corner[0, 20] == 1.0 and corner[20, 0] == 1.0 and corner[39, 20] < 0.2


def test_face_window_is_square_around_the_landmarks() -> None:
    pts = np.array([[100, 200], [160, 280]], np.float32)
    win = face_window(pts)
    assert win.size[0] == win.size[1] > 80
    assert win.x0 < 100 and win.x1 > 160
    assert win.y0 < 200 and win.y1 > 280
    turned = face_window(pts, yaw_deg=60.0)  # the back of the head is on the image's right
    assert turned.size == win.size and turned.x0 > win.x0 and turned.y0 == win.y0


def test_augment_keeps_image_and_mask_aligned() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), np.float32)
    cv2.rectangle(image, (10, 20), (30, 50), (255, 255, 255), -1)
    cv2.rectangle(mask, (10, 20), (30, 50), 1.0, -1)
    cfg = AugmentConfig(brightness=0, contrast=0, saturation=0, hue_deg=0, gamma=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        img2, mask2 = augment(image, mask, rng, cfg)
        assert img2.dtype == np.uint8 and mask2.dtype == np.float32
        assert ((img2[..., 0] >= 128) == (mask2 >= 0.5)).mean() > 0.99
    img3, _ = augment(image, mask, rng)  # with colour changes: the photo changes, the range holds
    assert img3.shape == image.shape


# --- data readers --------------------------------------------------------------------------


def test_lfw_reader_parses_a_written_sample(tmp_path: Path) -> None:
    gt = np.zeros((20, 20, 3), np.uint8)
    gt[...] = (0, 0, 255)  # background: blue
    gt[:6] = (255, 0, 0)  # hair: red
    gt[8:16, 4:16] = (0, 250, 5)  # skin: green (not exactly pure, as after resampling)
    photo = np.full((20, 20, 3), 128, np.uint8)
    (tmp_path / "parts_lfw_funneled_gt_images").mkdir()
    (tmp_path / "lfw_funneled" / "Jane_Doe").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "parts_lfw_funneled_gt_images" / "Jane_Doe_0001.ppm"),
                gt[..., ::-1])
    cv2.imwrite(str(tmp_path / "parts_lfw_funneled_gt_images" / "No_Photo_0001.ppm"),
                gt[..., ::-1])
    cv2.imwrite(str(tmp_path / "lfw_funneled" / "Jane_Doe" / "Jane_Doe_0001.jpg"), photo)
    assert detect_layout(tmp_path) == "lfw"
    pairs = read_lfw_parts(tmp_path)
    assert [p.name for p in pairs] == ["Jane_Doe_0001"]
    expected = np.zeros((20, 20), bool)
    expected[8:16, 4:16] = True
    np.testing.assert_array_equal(pairs[0].mask, expected)
    assert pairs[0].image.shape == (20, 20, 3)


def test_folder_reader_binary_masks_and_label_maps(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    labels = np.array([[0, 1, 2], [4, 5, 1]], np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((2, 3, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), labels)
    assert detect_layout(tmp_path) == "folder"
    binary = load_pairs(tmp_path)[0].mask
    np.testing.assert_array_equal(binary, labels > 0)
    by_label = load_pairs(tmp_path, skin_labels=[1, 4])[0].mask
    np.testing.assert_array_equal(by_label, np.isin(labels, [1, 4]))


def test_fasseg_reader(real_data: Path) -> None:
    train_dir = real_data / "fasseg-multipose" / "train"
    if not train_dir.is_dir():
        pytest.skip(f"{train_dir} not found (../shared/data or $MEIYAN_DATA)")
    assert detect_layout(train_dir) == "fasseg"
    pairs = load_pairs(train_dir)
    assert len(pairs) == 182
    coverage = np.mean([p.mask.mean() for p in pairs])
    assert 0.1 < coverage < 0.7


# --- inference -----------------------------------------------------------------------------


def test_segmenter_frames_each_face_and_letterboxes_without(sample_rgb: np.ndarray) -> None:
    from meiyan.face import analyze
    from meiyan.skin.unet_onnx import UNetSkinSegmenter

    seg = UNetSkinSegmenter(body=False)
    whole = seg(sample_rgb, [])  # no face: the letterboxed whole image
    assert whole.shape == sample_rgb.shape[:2] and whole.dtype == np.float32
    (face,) = analyze(sample_rgb)
    mask = seg(sample_rgb, [face])
    # With body skin on, skin beyond the window may be added, never taken away.
    with_body = UNetSkinSegmenter()(sample_rgb, [face])
    assert (with_body >= mask).all()
    win = face_window(face.landmarks, face.pose.yaw)
    inside = np.zeros(mask.shape, bool)
    inside[max(win.y0, 0) : win.y1, max(win.x0, 0) : win.x1] = True
    # Eyes, lips and inner mouth are cut out by the landmarks, whatever the network says.
    for name in ("eyes", "upper_lip", "lower_lip", "inner_mouth"):
        region = face.region(name, 0)
        assert (mask <= 1.0 - region + 1e-6).all(), name
        assert mask[region == 1.0].max() == 0.0, name
    assert mask[~inside].max() == 0.0 and mask[inside].max() > 0.5


def test_segmenter_reuses_the_person_segmenters_copy(sample_rgb: np.ndarray) -> None:
    """The body step takes the person segmenter's reduced copy of the photo instead of reducing
    it again: the same mask as reducing it here, and the copy given is the one used."""
    from meiyan.face import analyze
    from meiyan.face.person import default_person, person_and_copy
    from meiyan.skin.unet_onnx import UNetSkinSegmenter

    big = cv2.resize(sample_rgb, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    (face,) = analyze(big)
    person, rgb = person_and_copy(big)
    assert rgb.shape == (*person.shape, 3) and rgb.dtype == np.uint8
    assert np.array_equal(person, default_person().small(big))
    seg = UNetSkinSegmenter()
    reduced_here = seg(big, [face], person)
    assert np.array_equal(seg(big, [face], person, rgb), reduced_here)
    assert np.array_equal(seg(big, [face]), reduced_here)
    grey = seg(big, [face], person, np.full_like(rgb, 128))
    assert not np.array_equal(grey, reduced_here)
