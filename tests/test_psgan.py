"""PSGAN (Jiang et al., CVPR 2020): generator layout and size, official-key loading, ONNX export
against torch, shade 0 = identity, the engine's paste, the 68-point mapping, discriminators and
losses."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

# --- the official layout, written out from wtjiang98/PSGAN psgan/net.py -------------------


def _official_layout() -> dict[str, tuple[int, ...]]:
    """Every key of the official generator's state dict with its shape."""
    keys: dict[str, tuple[int, ...]] = {}

    def conv_in(name: str, c_in: int, c_out: int, k: int) -> None:  # conv, affine IN, ReLU
        keys[f"{name}.0.weight"] = (c_out, c_in, k, k)
        keys[f"{name}.1.weight"] = (c_out,)
        keys[f"{name}.1.bias"] = (c_out,)

    conv_in("pnet_in", 3, 64, 7)
    conv_in("pnet_down_1", 64, 128, 4)
    conv_in("pnet_down_2", 128, 256, 4)
    for att in ("atten_bottleneck_g", "atten_bottleneck_b"):
        keys[f"{att}.g.weight"] = (1, 1, 1, 1)
        keys[f"{att}.g.bias"] = (1,)
    keys["simple_spade.get_gamma.weight"] = (1, 256, 1, 1)
    keys["simple_spade.get_beta.weight"] = (1, 256, 1, 1)
    for i in range(1, 4):
        for j in (0, 3):
            keys[f"pnet_bottleneck_{i}.main.{j}.weight"] = (256, 256, 3, 3)
        for j in (1, 4):
            keys[f"pnet_bottleneck_{i}.main.{j}.weight"] = (256,)
            keys[f"pnet_bottleneck_{i}.main.{j}.bias"] = (256,)
    keys["tnet_in_conv.weight"] = (64, 3, 7, 7)
    keys["tnet_down_conv_1.weight"] = (128, 64, 4, 4)
    keys["tnet_down_conv_2.weight"] = (256, 128, 4, 4)
    for i in range(1, 7):
        for j in (0, 3):
            keys[f"tnet_bottleneck_{i}.main.{j}.weight"] = (256, 256, 3, 3)
    keys["tnet_up_conv_1.weight"] = (256, 128, 4, 4)  # ConvTranspose2d: (in, out, k, k)
    keys["tnet_up_conv_2.weight"] = (128, 64, 4, 4)
    keys["tnet_out.0.weight"] = (3, 64, 7, 7)
    return keys


@pytest.fixture(scope="module")
def torch_mod() -> ModuleType:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def official_pth(torch_mod: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised state dict in the official layout, saved as DataParallel does."""
    g = torch_mod.Generator().manual_seed(0)
    state = {
        f"module.{k}": torch_mod.randn(shape, generator=g) * 0.05
        for k, shape in _official_layout().items()
    }
    for k in state:
        if k.endswith(".1.weight") or k.endswith(".4.weight"):  # instance-norm scales near 1
            state[k] = 1.0 + state[k]
    path = tmp_path_factory.mktemp("psgan") / "G.pth"
    torch_mod.save(state, path)
    return path


@pytest.fixture(scope="module")
def onnx_model(official_pth: Path) -> tuple[Path, str]:
    """The random G.pth converted by ``meiyan convert psgan``; its path and the CLI's output."""
    from click.testing import CliRunner

    from meiyan.cli.convert_cmds import convert

    out = official_pth.parent / "psgan.onnx"
    result = CliRunner().invoke(convert, ["psgan", str(official_pth), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_parameter_count_is_the_official_one(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.network import OFFICIAL_PARAMETERS, PSGANGenerator, count_parameters

    official = sum(int(np.prod(s)) for s in _official_layout().values())
    assert official == OFFICIAL_PARAMETERS == 12_615_620
    assert count_parameters(PSGANGenerator()) == official


def test_state_dict_has_exactly_the_official_keys(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.network import PSGANGenerator

    ours = {k: tuple(v.shape) for k, v in PSGANGenerator().state_dict().items()}
    assert ours == _official_layout()


def test_every_official_key_is_loaded(torch_mod: ModuleType, official_pth: Path) -> None:
    from meiyan.makeup.psgan.convert import load_official

    model = load_official(official_pth)
    saved = torch_mod.load(official_pth, weights_only=True)
    loaded = model.state_dict()
    assert len(saved) == len(loaded) == len(_official_layout())
    for key, value in saved.items():
        assert torch_mod.equal(loaded[key.removeprefix("module.")], value), key


def test_other_layouts_are_refused_in_one_line(torch_mod: ModuleType, tmp_path: Path) -> None:
    from meiyan.errors import ModelError
    from meiyan.makeup.psgan.convert import load_official

    state = {k: torch_mod.zeros(s) for k, s in _official_layout().items()}
    del state["tnet_out.0.weight"]
    state["extra.weight"] = torch_mod.zeros(1)
    torch_mod.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"1 keys missing.*tnet_out\.0\.weight") as err:
        load_official(tmp_path / "bad.pth")
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable"):
        load_official(tmp_path / "junk.pth")


def test_landmark_features_are_unit_offsets_inside_regions(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.network import landmark_features

    lms = torch_mod.zeros(1, 68, 2)
    lms[0, :, 0] = 100.0  # x
    lms[0, :, 1] = 40.0  # y
    masks = torch_mod.zeros(1, 3, 256, 256)
    masks[0, 1, 128:, :] = 1  # skin: the lower half
    diff = landmark_features(lms, masks)
    assert diff.shape == (1, 3, 136, 64, 64)
    assert diff[0, 0].abs().sum() == 0 and diff[0, 1, :, :32].abs().sum() == 0
    norm = diff[0, 1, :, 32:].norm(dim=0)
    assert torch_mod.allclose(norm, torch_mod.ones_like(norm))
    # Position (row 40, column 10) of the 64 grid is pixel (y 160, x 40): y first, then x.
    ratio = diff[0, 1, 0, 40, 10] / diff[0, 1, 68, 40, 10]
    assert float(ratio) == pytest.approx((160 - 40) / (40 - 100))


@pytest.mark.slow
def test_shade_zero_applies_no_makeup(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.convert import PSGANExport, example_inputs
    from meiyan.makeup.psgan.network import PSGANGenerator

    wrapper = PSGANExport(PSGANGenerator().eval())
    inputs = list(example_inputs(seed=2))
    inputs[-1] = torch_mod.zeros_like(inputs[-1])
    with torch_mod.no_grad():
        image, bare = wrapper(*inputs)
        inputs[-1][:, 0] = 1.0  # lips at full shade changes the picture
        lips, _ = wrapper(*inputs)
    assert torch_mod.equal(image, bare)
    assert float((lips - bare).abs().max()) > 0


@pytest.mark.slow
def test_onnx_matches_torch(onnx_model: tuple[Path, str]) -> None:
    import onnx

    path, output = onnx_model
    diff = float(output.split("max |onnx - torch| = ")[1].split(")")[0])
    assert diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert meta["meiyan.model"] == "psgan" and meta["meiyan.regions"] == "lips,skin,eyes"
    assert not path.with_name(path.name + ".part").exists()
    # Shade 0 in the ONNX graph: the makeup output is the bare one exactly.
    import onnxruntime as ort

    from meiyan.makeup.psgan.convert import INPUTS, example_inputs

    feed = {n: t.numpy() for n, t in zip(INPUTS, example_inputs(seed=3), strict=True)}
    feed["shade"][:] = 0.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image, bare = session.run(["image", "bare"], feed)
    assert np.array_equal(image, bare)


def test_cli_refuses_to_overwrite(official_pth: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from meiyan.cli.convert_cmds import convert

    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    result = CliRunner().invoke(convert, ["psgan", str(official_pth), "-o", str(out)])
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_bytes() == b"keep"


# --- the engine -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_faces(request: pytest.FixtureRequest) -> tuple[np.ndarray, list]:
    from PIL import Image

    from meiyan.makeup.faces import find_faces

    path = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return rgb, find_faces(rgb)


@pytest.mark.slow
def test_engine_shade_zero_is_identity_and_outside_the_face_stays(
    onnx_model: tuple[Path, str], sample_faces: tuple[np.ndarray, list]
) -> None:
    from meiyan.face import region_mask
    from meiyan.makeup.psgan.engine import PsganEngine
    from meiyan.makeup.transfer import Reference

    image, faces = sample_faces
    engine = PsganEngine(onnx_model[0], threads=1)
    ref = Reference.of(np.ascontiguousarray(image[:, ::-1]))
    refs = dict.fromkeys(("lips", "eyes", "skin"), ref)
    same = engine(image, faces, {"lips": 0.0, "eyes": 0.0, "skin": 0.0}, refs=refs)
    assert same.dtype == image.dtype and np.array_equal(same, image)
    out = engine(image, faces, {"lips": 1.0, "eyes": 1.0}, refs=refs)
    changed = np.abs(out.astype(int) - image).max(axis=2) > 0
    assert changed.any()
    oval = region_mask(faces[0].landmarks, "face_oval", image.shape[:2]) > 0
    assert not changed[~oval].any()
    # Skin not chosen: the bare skin (away from eyes and lips) keeps its colour, up to the
    # feathered edges of the eye and lip masks reaching into it.
    from meiyan.makeup.regions import makeup_masks

    core = makeup_masks(faces[0].landmarks, image.shape[:2], soft=False)["skin_core"] > 0
    moved = np.abs(out.astype(float) - image)[core]
    assert moved.mean() < 0.1 and moved.max() <= 6


def test_engine_refuses_virtual_looks(tmp_path: Path) -> None:
    from meiyan.engines import EngineError
    from meiyan.makeup.looks import get_look
    from meiyan.makeup.psgan.engine import PsganEngine

    engine = PsganEngine.__new__(PsganEngine)  # no model needed to refuse
    with pytest.raises(EngineError, match="reference"):
        engine(np.zeros((8, 8, 3), np.uint8), [], {"lips": 1.0}, look=get_look("natural"))


# --- the engine behind meiyan.makeup and meiyan makeup --------------------------------------


def test_psgan_is_registered_and_auto_stays_classic() -> None:
    from meiyan.makeup.api import SLOT

    assert "psgan" in SLOT.names() and "no model ships" in SLOT.spec("psgan").description
    assert SLOT.resolve("auto", job="makeup") == "classic"


def test_psgan_without_weights_is_a_clear_one_line_error(
    sample_faces: tuple[np.ndarray, list], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from meiyan import makeup
    from meiyan.cli.main import main
    from meiyan.engines import EngineError

    image, faces = sample_faces
    with pytest.raises(EngineError, match=r"meiyan convert psgan G\.pth") as e:
        makeup(image, reference=image, engine="psgan", faces=faces)
    assert "\n" not in str(e.value) and "meiyan train psgan" in str(e.value)
    with pytest.raises(EngineError, match="only apply to the 'psgan'"):
        makeup(image, reference=image, engine="classic", weights=tmp_path / "m.onnx",
               faces=faces)
    photo = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
    args = ["makeup", str(photo), "-o", str(tmp_path / "out"), "--reference", str(photo)]
    result = CliRunner().invoke(main, [*args, "--engine", "psgan"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "meiyan convert psgan" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_psgan_through_the_public_api_and_the_cli(
    onnx_model: tuple[Path, str], sample_faces: tuple[np.ndarray, list], tmp_path: Path
) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from meiyan import makeup
    from meiyan.cli.main import main

    image, faces = sample_faces
    ref = np.ascontiguousarray(image[:, ::-1])
    model = onnx_model[0]
    out = makeup(image, reference=ref, engine="psgan", weights=model, faces=faces,
                 regions="lips,eyes")
    assert out.shape == image.shape and not np.array_equal(out, image)
    # weights= makes auto take psgan, as for the edit slot's sc-fegan.
    auto = makeup(image, reference=ref, weights=str(model), faces=faces, regions="lips,eyes")
    assert np.array_equal(auto, out)
    same = makeup(image, reference=ref, engine="psgan", weights=model, faces=faces, shade=0.0)
    assert np.array_equal(same, image)
    zero = dict.fromkeys(("lips", "eyes", "skin", "brows", "blush"), 0.0)
    same = makeup(image, reference=ref, engine="psgan", weights=model, faces=faces, shade=zero)
    assert np.array_equal(same, image)

    photo = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"
    Image.fromarray(ref).save(tmp_path / "ref.png")
    result = CliRunner().invoke(main, [
        "makeup", str(photo), "-o", str(tmp_path / "out"), "--reference", str(tmp_path / "ref.png"),
        "--regions", "lips", "--engine", "psgan", "--weights", str(model),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open(tmp_path / "out" / "astronaut.png").convert("RGB"))
    assert written.shape == image.shape and not np.array_equal(written, image)


@pytest.mark.slow
def test_quantised_export_loads_runs_and_is_small(
    official_pth: Path, onnx_model: tuple[Path, str], sample_faces: tuple[np.ndarray, list]
) -> None:
    import onnx
    from click.testing import CliRunner

    from meiyan import makeup
    from meiyan.cli.convert_cmds import convert
    from meiyan.makeup.psgan.compress import compress_weights

    out = official_pth.parent / "psgan_int8.onnx"
    result = CliRunner().invoke(
        convert, ["psgan", str(official_pth), "-o", str(out), "--precision", "int8"]
    )
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["meiyan.precision"] == "int8"
    assert out.stat().st_size < 20e6 < onnx_model[0].stat().st_size
    # Every large convolution weight (27 of them) is stored as int8; float16 halves them.
    int8 = sum(n.op_type == "DequantizeLinear" for n in proto.graph.node)
    half = onnx.load(str(onnx_model[0]))
    assert compress_weights(half, "float16") == int8 == 27
    assert half.ByteSize() < 0.55 * onnx_model[0].stat().st_size
    image, faces = sample_faces
    ref = np.ascontiguousarray(image[:, ::-1])
    made = {}
    for name, path in (("float32", onnx_model[0]), ("int8", out)):
        made[name] = makeup(image, reference=ref, engine="psgan", weights=path, faces=faces,
                            regions="lips,eyes,skin")
        same = makeup(image, reference=ref, engine="psgan", weights=path, faces=faces, shade=0)
        assert np.array_equal(same, image)
    moved = np.abs(made["float32"].astype(int) - image).max(axis=2) > 0
    assert moved.any()
    gap = np.abs(made["int8"].astype(int) - made["float32"])[moved]
    assert gap.mean() < 0.5 * np.abs(made["float32"].astype(int) - image)[moved].mean()


# --- the 68-point mapping ---------------------------------------------------------------------


def test_mapping_is_68_distinct_mesh_vertices() -> None:
    from meiyan.makeup.psgan.landmarks68 import MEDIAPIPE_TO_IBUG68

    assert len(MEDIAPIPE_TO_IBUG68) == 68 == len(set(MEDIAPIPE_TO_IBUG68))
    assert all(0 <= i < 468 for i in MEDIAPIPE_TO_IBUG68)


def test_68_points_follow_ibug_order_on_the_sample(sample_faces: tuple[np.ndarray, list]) -> None:
    from meiyan.makeup.psgan.landmarks68 import to_ibug68

    _, faces = sample_faces
    p = to_ibug68(faces[0].landmarks)
    x, y = p[:, 0], p[:, 1]
    iod = float(np.hypot(*(p[42:48].mean(0) - p[36:42].mean(0))))
    assert iod > 20
    # Jaw 0-16 from the image's left to its right (its upper ends run nearly vertical), down
    # to the chin (8) and up again.
    assert np.all(np.diff(x[0:17]) > -0.05 * iod)
    assert np.all(x[0:8] < x[8]) and np.all(x[9:17] > x[8])
    assert np.all(x[0:8] < x[16:8:-1])
    assert np.all(np.diff(y[0:9]) > 0) and np.all(np.diff(y[8:17]) < 0)
    assert abs(y[0] - y[16]) < 0.3 * iod and abs(y[0] - p[36:48, 1].mean()) < 0.5 * iod
    # Brows 17-26 left to right, above the eyes.
    assert np.all(np.diff(x[17:27]) > 0)
    assert y[17:22].max() < y[36:42].min() and y[22:27].max() < y[42:48].min()
    # Nose: bridge 27-30 downwards, lower nose 31-35 left to right below the tip's top.
    assert np.all(np.diff(y[27:31]) > 0) and np.all(np.diff(x[31:36]) > 0)
    assert y[33] > y[29] and x[31] < x[30] < x[35]
    # Eyes: 36 outer-left, 39 inner, 42 inner, 45 outer-right; upper lids above lower lids.
    assert x[36] < x[39] < x[42] < x[45]
    assert max(y[37], y[38]) < min(y[40], y[41]) and max(y[43], y[44]) < min(y[46], y[47])
    # Mouth below the nose: corners 48 (left) and 54 (right), 51 on top of 57, the inner
    # contour inside the outer one.
    assert y[48:68].min() > y[33]
    assert x[48] < x[51] < x[54] and y[51] < y[62] <= y[66] < y[57]
    assert np.all(np.diff(x[48:55]) > 0) and np.all(np.diff(x[54:60]) < 0)
    assert x[48] <= x[60] < x[64] <= x[54]
    # The chin is the lowest point.
    assert y.argmax() == 8


# --- discriminators and losses ----------------------------------------------------------------


def test_discriminator_shapes(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.discriminators import PatchDiscriminator, region_discriminators

    assert PatchDiscriminator()(torch_mod.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    critics = region_discriminators()
    eye = critics["eye"](torch_mod.zeros(2, 6, 64, 64), torch_mod.zeros(2, 2, 64, 64))
    lip = critics["lip"](torch_mod.zeros(2, 3, 64, 96), torch_mod.zeros(2, 1, 64, 96))
    assert eye.shape == (2, 1, 8, 8) and lip.shape == (2, 1, 8, 12)
    assert critics["brow"].condition[0].in_channels == 8
    assert len(critics["lip"].blocks) == 8
    with pytest.raises(ValueError, match="expected 6 image"):
        critics["brow"](torch_mod.zeros(1, 3, 32, 32), torch_mod.zeros(1, 2, 32, 32))


def test_mask_condition_flip_and_mirrors(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.discriminators import mask_condition

    m = torch_mod.tensor([[[[1.0, 0.0, 0.0, 0.0, 2.0]]]])  # (1, 1, 1, 5)
    c = mask_condition(m)[0, :, 0]
    assert c.shape == (4, 5)
    assert c[0].tolist() == [1, 0, 0, 0, 2]
    assert c[1].tolist() == [2, 0, 0, 0, 1]  # flipped
    assert c[2].tolist() == [1, 0, 0, 0, 1]  # left half mirrored onto the right
    assert c[3].tolist() == [2, 0, 0, 0, 2]  # right half mirrored onto the left


def test_losses(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan import losses

    assert float(losses.lsgan(torch_mod.ones(2, 1, 4, 4), real=True)) == 0.0
    assert float(losses.lsgan(torch_mod.ones(2, 1, 4, 4), real=False)) == 1.0
    features = torch_mod.zeros(1, 1, 64, 64)
    features[..., 20:30, 20:40] = 1
    w = losses.feature_weight(features, sigma=3.0, floor=0.2)
    assert float(w.min()) > 0.2 and float(w.max()) == pytest.approx(1.0)
    assert float(w[..., 25, 30]) < float(w[..., 50, 50])
    g = torch_mod.Generator().manual_seed(0)
    x = torch_mod.rand(1, 3, 64, 64, generator=g) * 2 - 1
    y = (x + 0.3).clamp(-1, 1).requires_grad_()
    plain = losses.cycle_loss(y, x)
    assert float(losses.cycle_loss(y, x, w).detach()) < float(plain.detach())
    assert float(losses.identity_loss(x, x)) == 0.0
    perceptual = losses.perceptual_loss(lambda t: [t, t[..., ::2, ::2]], y, x, w)
    perceptual.backward()
    assert y.grad is not None and float(perceptual.detach()) > 0


def test_makeup_loss_is_small_for_the_reference_itself(torch_mod: ModuleType) -> None:
    from meiyan.makeup.psgan.losses import histogram_target, makeup_loss

    g = torch_mod.Generator().manual_seed(0)
    ref = torch_mod.rand(1, 3, 32, 32, generator=g) * 2 - 1
    masks = torch_mod.zeros(1, 3, 32, 32)
    masks[:, 0, 20:28, 8:24] = 1
    masks[:, 1, 2:18, 2:30] = 1
    masks[:, 2, 4:10, 4:28] = 1
    same = makeup_loss(ref, ref, masks, masks)
    pale = (ref * 0.3 + 0.6).requires_grad_()
    far = makeup_loss(pale, ref, masks, masks)
    far.backward()
    assert float(same) < 0.1 * float(far.detach()) and pale.grad is not None
    # The target moves the region's colours towards the reference's, and leaves the rest.
    target = histogram_target(pale, ref, masks[:, 0], masks[:, 0])
    lips = masks[:, :1].bool().expand(-1, 3, -1, -1)
    assert torch_mod.equal(target[~lips], pale.detach()[~lips])
    gap = (target - ref)[lips].mean().abs()
    assert float(gap) < float((pale.detach() - ref)[lips].mean().abs())
