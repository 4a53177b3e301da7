"""ABPN (Lei et al., CVPR 2022): the network, the synthetic defects, the engine, the shipped
model and the GPU script."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from meiyan.retouch.abpn.engine import AbpnCropResult, AbpnRetouch
from meiyan.retouch.beautify import BeautifySettings
from meiyan.retouch.blend import soft_light
from meiyan.train.defects import KINDS, FaceSample, synthesize

OFF = {"smooth": 0.0, "tone": 0.0, "blemish": 0.0, "whiten": 0.0, "detail": 0.0}


def _face(seed: int = 0, size: int = 96) -> FaceSample:
    """A textured grey-pink 'face' with a round skin mask and two under-eye ellipses."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.float32)
    img[:] = (0.78, 0.6, 0.52)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    skin = (np.hypot(xx - size / 2, yy - size / 2) < size * 0.35).astype(np.float32)
    eyes = [(size * 0.35, size * 0.42, 8.0, 3.0), (size * 0.65, size * 0.42, 8.0, 3.0)]
    return FaceSample(np.clip(img, 0, 1), skin, eyes)


# --- the network ---------------------------------------------------------------------------


def test_parameter_count() -> None:
    pytest.importorskip("torch")
    from meiyan.retouch.abpn.network import ABPN, PARAMETERS, parameter_count

    assert parameter_count(ABPN()) == PARAMETERS == 1_283_232


def test_abm_with_soft_light_scalars_is_soft_light() -> None:
    torch = pytest.importorskip("torch")
    from meiyan.retouch.abpn.network import ABM

    rng = np.random.default_rng(0)
    image, layer = rng.random((2, 3, 17, 19), dtype=np.float32)
    abm = ABM()
    got = abm(torch.from_numpy(image), torch.from_numpy(layer)).detach().numpy()
    np.testing.assert_allclose(got, soft_light(image, layer), atol=1e-6)
    # R-ABM inverts it up to its regularisation (eps 0.02: 1% at I = 0.1).
    mid = np.clip(image, 0.1, 0.9)
    back = abm.reverse(torch.from_numpy(mid), abm(torch.from_numpy(mid), torch.from_numpy(layer)))
    np.testing.assert_allclose(back.detach().numpy(), layer, atol=1e-2)


def test_network_shapes_and_neutral_start() -> None:
    torch = pytest.importorskip("torch")
    from meiyan.retouch.abpn.network import ABPN

    torch.manual_seed(0)
    out = ABPN()(torch.rand(2, 3, 64, 96), torch.tensor([[0.0], [1.0]]))
    assert out.retouched.shape == out.layer.shape == (2, 3, 64, 96)
    assert out.mask_logits.shape == (2, 1, 16, 24) and out.low.shape == (2, 3, 16, 24)
    layer = out.layer.detach()
    assert float(layer.min()) >= 0 and float(layer.max()) <= 1


# --- synthetic defects ---------------------------------------------------------------------


def test_defects_deterministic_by_seed_and_only_in_skin() -> None:
    face = _face()
    a = synthesize(face, np.random.default_rng(5))
    b = synthesize(face, np.random.default_rng(5))
    c = synthesize(face, np.random.default_rng(6))
    np.testing.assert_array_equal(a.image, b.image)
    assert a.defects == b.defects and not np.array_equal(a.image, c.image)
    changed = np.abs(a.image - face.image).max(axis=2) > 0
    assert changed.any() and not changed[face.skin == 0].any()
    np.testing.assert_array_equal(a.target[face.skin == 0], face.image[face.skin == 0])


def test_every_kind_draws_and_moles_are_kept_unless_asked() -> None:
    face = _face(1)
    for kind in KINDS:
        d = synthesize(face, np.random.default_rng(0), {kind: (2, 3)})
        assert {p.kind for p in d.defects} == {kind}, kind
        reference = face.image if kind == "mole" else d.target  # moles stay in the target
        assert np.abs(d.image - reference).max() > 0.01, kind
    kept = synthesize(face, np.random.default_rng(0), {"mole": (3, 4)})
    np.testing.assert_array_equal(kept.image, kept.target)  # only moles: the target keeps them
    assert kept.blemish.max() == 0 and kept.moles.max() > 0.9
    gone = synthesize(face, np.random.default_rng(0), {"mole": (3, 4)}, moles_removed=True)
    np.testing.assert_array_equal(gone.target, face.image)
    assert gone.blemish.max() > 0.9
    with pytest.raises(ValueError, match="unknown defect kind"):
        synthesize(face, np.random.default_rng(0), {"wart": (1, 2)})


# --- the engine ----------------------------------------------------------------------------


class _Constant:
    """A stand-in network: a constant layer, the blemish mask 1 on the left half."""

    def __init__(self, value: float = 0.7) -> None:
        self.value, self.calls = value, 0

    def __call__(self, image: np.ndarray, moles: bool) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        h, w = image.shape[:2]
        mask = np.zeros((h, w), np.float32)
        mask[:, : w // 2] = 1.0
        return np.full((h, w, 3), self.value, np.float32), mask

    def blend(self, image: np.ndarray, layer: np.ndarray) -> np.ndarray:
        return soft_light(image, layer)


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 215, (64, 80, 3), dtype=np.uint8)


def _run(engine: AbpnRetouch, img: np.ndarray, **kw: float) -> np.ndarray:
    out = img.copy()
    s = BeautifySettings(**{**OFF, "skin": "none", **kw})
    result = engine(out, None, s)
    assert all(isinstance(r, AbpnCropResult) for r in result.crops)
    return result.image


def test_strength_zero_is_the_identity_and_skips_the_network() -> None:
    fake = _Constant()
    engine = AbpnRetouch(fake)
    img = _image()
    np.testing.assert_array_equal(_run(engine, img), img)
    faces_img = img.copy()
    assert engine(faces_img, [], BeautifySettings(**OFF)).crops == []
    np.testing.assert_array_equal(faces_img, img)
    _run(engine, img, whiten=0.5)  # whitening alone: the network is not run
    assert fake.calls == 0


def test_each_stage_keeps_its_own_strength() -> None:
    engine = AbpnRetouch(_Constant(0.7))
    img = _image(1)
    w = img.shape[1]
    left, right = slice(4, w // 2 - 4), slice(w // 2 + 4, w - 4)
    only_blemish = _run(engine, img, blemish=1.0).astype(int) - img
    only_tone = _run(engine, img, tone=1.0).astype(int) - img
    assert only_blemish[:, left].mean() > 5 and np.abs(only_blemish[:, right]).max() == 0
    assert only_tone[:, right].mean() > 5 and np.abs(only_tone[:, left]).max() == 0
    half = _run(engine, img, blemish=0.5).astype(int) - img
    assert abs(half[:, left].mean() - only_blemish[:, left].mean() / 2) < 1.0


def test_output_is_rounded_not_truncated() -> None:
    engine = AbpnRetouch(_Constant(0.63))
    img = _image(2)
    as_u8 = _run(engine, img, blemish=0.8, tone=0.6)
    as_float = _run(engine, img.astype(np.float32) / 255.0, blemish=0.8, tone=0.6)
    expected = np.clip(np.round(as_float * 255.0), 0, 255)
    diff = as_u8.astype(np.float64) - expected
    assert np.abs(diff).max() <= 1 and np.mean(diff != 0) < 0.01
    assert abs(float(np.mean(as_u8 - as_float * 255.0))) < 0.05  # truncation would be -0.5


def test_overlapping_faces_are_both_retouched() -> None:
    from meiyan.face import analyze
    from meiyan.io.image import read_image

    src = Path(__file__).parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
    img = read_image(src).pixels
    faces = analyze(img)
    assert faces
    face = faces[0]
    moved = replace(
        face,
        landmarks=face.landmarks + np.float32(face.size * 0.3),
        bbox=tuple(v + face.size * 0.3 for v in face.bbox),
    )
    engine = AbpnRetouch(_Constant(0.7))
    s = BeautifySettings(**{**OFF, "blemish": 1.0, "tone": 1.0})
    one, other, both = img.copy(), img.copy(), img.copy()
    engine(one, [face], s)
    engine(other, [moved], s)
    engine(both, [face, moved], s)
    gained = (both.astype(int) - img).sum()
    assert gained > (one.astype(int) - img).sum() and gained > (other.astype(int) - img).sum()


# --- the shipped model ---------------------------------------------------------------------


def test_shipped_model_registered_and_verified() -> None:
    from meiyan.models import get_spec, model_path, verify

    spec = get_spec("abpn")
    path = model_path("abpn")
    assert path.parent.name == "models" and path.stat().st_size == spec.size <= 15 * 2**20
    verify(path, spec.sha256)
    assert not spec.commercial and "CelebA" in spec.data_terms and "FASSEG" in spec.data_terms
    assert (path.parent / spec.card).is_file()


@pytest.mark.slow
def test_shipped_model_runs_and_keeps_clean_skin() -> None:
    from meiyan.retouch.abpn.engine import AbpnNetwork

    net = AbpnNetwork()
    face = _face(3, 100)
    layer, mask = net(face.image, False)
    assert layer.shape == (100, 100, 3) and mask.shape == (100, 100)
    d = synthesize(face, np.random.default_rng(0), {"spot": (6, 7)})
    layer, mask = net(d.image, False)
    out = net.blend(d.image, layer)
    at = d.blemish > 0.3
    assert np.abs(out - d.target)[at].mean() < np.abs(d.image - d.target)[at].mean()


# --- training and the GPU script -----------------------------------------------------------


@pytest.mark.slow
def test_gpu_script_and_export_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from meiyan.train.tasks import abpn_gpu
    from meiyan.train.tasks.abpn import write_faces_file
    from meiyan.train.trainer import load_task

    faces = [_face(i, 96) for i in range(4)]
    data = write_faces_file(
        tmp_path / "faces.npz", faces, [f"f{i}" for i in range(4)], [0, 0, 0, 1]
    )
    summary = abpn_gpu.main(
        [
            "--faces",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--steps",
            "2",
            "--size",
            "64",
            "--batch",
            "2",
            "--workers",
            "0",
        ]
    )
    assert summary["steps"] == 2 and "val_gain" in summary["metrics"]
    ckpt = tmp_path / "out" / "abpn_gpu.pt"
    assert ckpt.stat().st_size < 16 * 2**20
    diff = load_task(ckpt, "abpn").export(tmp_path / "abpn.onnx")
    assert diff < 1e-4


@pytest.mark.slow
def test_training_starts_from_the_shipped_model_and_the_lrl_stage_keeps_the_pyramid(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from meiyan.models import model_path
    from meiyan.retouch.abpn.network import ABPN
    from meiyan.train.tasks.abpn import AbpnConfig, AbpnTask, initial_weights, write_faces_file
    from meiyan.train.trainer import Trainer, TrainerConfig

    shipped = model_path("abpn")
    net = ABPN()  # the shipped width
    net.load_state_dict(initial_weights(shipped))
    image = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
    moles = np.ones((1, 1), np.float32)
    layer = ort.InferenceSession(str(shipped)).run(["layer"], {"image": image, "moles": moles})
    with torch.no_grad():
        mine = net(torch.from_numpy(image), torch.from_numpy(moles)).layer.numpy()
    assert np.abs(mine - layer[0]).max() < 1e-5

    faces = [_face(i, 96) for i in range(4)]
    data = write_faces_file(tmp_path / "f.npz", faces, [f"f{i}" for i in range(4)], [0, 0, 0, 1])
    options = {"faces": str(data), "size": 64, "val_size": 64, "width": 8, "init": str(shipped)}
    with pytest.raises(ValueError, match="another LRL width"):
        AbpnTask(AbpnConfig(**options)).build_networks()
    task = AbpnTask(AbpnConfig(**options, stage="lrl"))
    cfg = TrainerConfig(out=str(tmp_path / "run"), epochs=1, batch=2, workers=0, device="cpu")
    summary = Trainer(task, cfg).fit(progress=False)
    assert "val_low_gain" in summary["history"][-1]["metrics"]
    state = task.nets["abpn"].state_dict()
    start = initial_weights(shipped)
    assert all(torch.equal(state[k], start[k]) for k in start if not k.startswith("lrl."))
    assert state["lrl.enc0.0.weight"].shape[0] == 8
