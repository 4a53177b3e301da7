"""Skin retouching after ABPN: blend layers, even tone, blemishes, whitening, face crops, CLI."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

import meiyan
from meiyan.cli.main import main
from meiyan.errors import NoFaceWarning
from meiyan.face.window import upsample_window
from meiyan.io.image import read_image
from meiyan.retouch.beautify import (
    PRESETS,
    BeautifySettings,
    retouch,
)
from meiyan.retouch.blemish import detect_spots, removal_strength
from meiyan.retouch.blend import apply_gain, gain_for, scale_layer, soft_light
from meiyan.retouch.face_skin import feature_mask, search_zone
from meiyan.retouch.tone import HAEMOGLOBIN, MELANIN, even_tone_layer, unmix
from meiyan.retouch.whiten import whiten

ALL_OFF = {"smooth": 0.0, "tone": 0.0, "blemish": 0.0, "whiten": 0.0, "detail": 0.0}
SKIN = np.array([0.78, 0.58, 0.47], np.float32)


def skin_noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Float32 skin-coloured patch with fine grain (seeded)."""
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0, 0.012, (h, w)).astype(np.float32), (0, 0), 0.7)
    return np.clip(SKIN * (1.0 + grain[..., None]), 0, 1).astype(np.float32)


def add_spot(x: np.ndarray, cx: float, cy: float, d: float, tint, depth: float) -> np.ndarray:
    """Blend a soft spot of diameter ``d`` (opacity ``2 ** -(2r/d) ** 3``) into float ``x``."""
    yy, xx = np.mgrid[: x.shape[0], : x.shape[1]].astype(np.float32)
    opacity = 2.0 ** -((2 * np.hypot(xx - cx, yy - cy) / d) ** 3)
    return x * (1.0 - depth * opacity[..., None] * np.asarray(tint, np.float32))


def cbcr_hue(x: np.ndarray) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    return np.arctan2(ycc[..., 1] - 0.5, ycc[..., 2] - 0.5)


# ------------------------------------------------------------------------------ blend layers


def test_soft_light_at_half_is_the_identity_bit_for_bit() -> None:
    x = np.random.default_rng(1).random((31, 17, 3), dtype=np.float32)
    assert np.array_equal(soft_light(x, np.full_like(x, 0.5)), x)
    # ABPN's formula (1 - 2B) I^2 + 2B I, and its direction: B > 0.5 lightens.
    b = np.float32(0.8)
    assert np.allclose(soft_light(x, np.full_like(x, b)), (1 - 2 * b) * x * x + 2 * b * x)
    assert (soft_light(x, np.full_like(x, b)) >= x).all()


def test_gain_for_inverts_the_blend_and_scaling_is_linear() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0.2, 0.8, (20, 20, 3)).astype(np.float32)
    target = np.clip(x + rng.uniform(-0.05, 0.05, x.shape), 0, 1).astype(np.float32)
    assert np.allclose(apply_gain(x, gain_for(x, target)), target, atol=1e-5)
    layer = rng.random(x.shape, dtype=np.float32)
    half = soft_light(x, scale_layer(layer, 0.5))
    assert np.allclose(half, 0.5 * x + 0.5 * soft_light(x, layer), atol=1e-6)
    assert np.array_equal(scale_layer(layer, 0.0), np.full_like(layer, 0.5))


# ---------------------------------------------------------------------------- tone, whitening


def test_whitening_lifts_luminance_keeps_hue_and_range() -> None:
    tones = np.array(
        [[[0.95, 0.80, 0.70], [0.78, 0.58, 0.47], [0.55, 0.38, 0.28], [0.35, 0.22, 0.16]]],
        np.float32,
    )
    out = whiten(tones, 1.0)
    y_in = cv2.cvtColor(tones, cv2.COLOR_RGB2YCrCb)[..., 0]
    y_out = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 0]
    assert (y_out > y_in + 0.02).all()
    assert np.abs(cbcr_hue(out) - cbcr_hue(tones)).max() < 1e-3  # no grey or pink cast
    assert out.min() >= 0 and out.max() <= 1
    assert np.array_equal(whiten(tones, 0.0), tones)


def test_even_tone_cancels_a_red_blotch_and_keeps_the_shading() -> None:
    h = w = 160
    shading = np.linspace(0.85, 1.0, h, dtype=np.float32)[:, None, None]
    clean = skin_noise(h, w) * shading
    blotchy = add_spot(clean, 80, 80, 40, (0.0, 1.0, 0.8), 0.15)
    layer = even_tone_layer(blotchy, np.ones((h, w), np.float32), face_size=300)
    out = soft_light(blotchy, layer)
    cr = [cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[..., 1] for a in (clean, blotchy, out)]
    centre = (slice(72, 88), slice(72, 88))
    excess_before = cr[1][centre].mean() - cr[0][centre].mean()
    excess_after = cr[2][centre].mean() - cr[0][centre].mean()
    assert excess_after < 0.5 * excess_before
    y = [cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[..., 0] for a in (clean, out)]
    shade_in = y[0][-20:, :30].mean() - y[0][:20, :30].mean()
    shade_out = y[1][-20:, :30].mean() - y[1][:20, :30].mean()
    assert shade_out > 0.7 * shade_in  # the lighting gradient stays


def test_unmix_names_shading_haemoglobin_and_melanin() -> None:
    unit = [np.asarray(v, np.float32) / np.linalg.norm(v) for v in (HAEMOGLOBIN, MELANIN)]
    changes = np.stack([np.full(3, 0.2, np.float32), -0.3 * unit[0], -0.1 * unit[1]])
    expected = [(0.2 * math.sqrt(3), 0, 0), (0, 0.3, 0), (0, 0, 0.1)]
    assert np.allclose(unmix(changes), expected, atol=1e-5)


def test_even_tone_takes_pigment_out_and_leaves_grey_shading() -> None:
    # A brown (melanin) patch is more pigment: evened, in part (it darkens all three channels,
    # and the removal fades where shading changes more than pigment). A grey patch of the same
    # depth is a shadow: shading, kept. Clean skin with grain and a lighting gradient: kept.
    h = w = 160
    shading = np.linspace(0.85, 1.0, h, dtype=np.float32)[:, None, None]
    clean = skin_noise(h, w, seed=1) * shading
    ones = np.ones((h, w), np.float32)
    centre = (slice(72, 88), slice(72, 88))
    brown = add_spot(clean, 80, 80, 40, (0.5, 0.8, 1.0), 0.15)
    out = soft_light(brown, even_tone_layer(brown, ones, face_size=300))
    before = np.abs(brown[centre] - clean[centre]).mean()
    assert np.abs(out[centre] - clean[centre]).mean() < 0.85 * before
    grey = add_spot(clean, 80, 80, 40, (1.0, 1.0, 1.0), 0.15)
    assert np.abs(even_tone_layer(grey, ones, face_size=300) - 0.5).max() < 0.01
    assert np.abs(even_tone_layer(clean, ones, face_size=300) - 0.5).max() < 0.01


def test_even_tone_leaves_fine_mottling_and_evens_a_blotch() -> None:
    # Skin's own fine red mottling (features a few pixels across, 3% haemoglobin) is part of
    # the skin: changed by little. A blotch on the same skin is still evened.
    h = w = 200
    rng = np.random.default_rng(2)
    field = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5)
    hb = np.asarray(HAEMOGLOBIN, np.float32) / np.linalg.norm(HAEMOGLOBIN)
    shading = np.linspace(0.85, 1.0, h, dtype=np.float32)[:, None, None]
    plain = shading * skin_noise(h, w, seed=2)
    clean = plain * np.exp(-0.03 * (field / field.std())[..., None] * hb)
    blotchy = add_spot(clean, 100, 100, 40, (0.0, 1.0, 0.8), 0.15)
    out = soft_light(blotchy, even_tone_layer(blotchy, np.ones((h, w), np.float32), 300))
    yy, xx = np.mgrid[:h, :w]
    far = np.hypot(xx - 100, yy - 100) > 60
    assert np.abs(out - clean)[far].mean() < 0.12 * np.abs(clean - plain)[far].mean()
    centre = (slice(90, 110), slice(90, 110))
    cr = [
        cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[..., 1][centre].mean() for a in (clean, blotchy, out)
    ]
    assert cr[2] - cr[0] < 0.6 * (cr[1] - cr[0])


# --------------------------------------------------------------------------------- blemishes


def test_spots_are_found_and_classified_freckles_apart() -> None:
    x = skin_noise(220, 220, seed=3)
    x = add_spot(x, 50, 60, 8, (0.85, 1.0, 1.15), 0.3)  # isolated dark spot
    x = add_spot(x, 160, 60, 7, (0.1, 1.0, 0.6), 0.3)  # red spot
    rng = np.random.default_rng(4)
    cluster = rng.uniform(0, 30, (10, 2)) + np.array([95, 150])  # ten small dots close together
    for cx, cy in cluster:
        x = add_spot(x, cx, cy, 3.0, (0.7, 1.0, 1.3), 0.25)
    spots = detect_spots(x, np.ones(x.shape[:2], np.float32), face_size=300)

    def kind_at(cx: float, cy: float) -> str | None:
        near = [s for s in spots if math.hypot(s.x - cx, s.y - cy) < 4]
        return near[0].kind if near else None

    assert kind_at(50, 60) == "dark"
    assert kind_at(160, 60) == "red"
    freckles = [kind_at(cx, cy) for cx, cy in cluster]
    assert freckles.count("freckle") >= 6
    freckle = next(s for s in spots if s.kind == "freckle")
    assert removal_strength(freckle, "keep", False) == 0.0
    assert removal_strength(freckle, "reduce", False) == 0.5
    assert removal_strength(freckle, "remove", False) == 1.0
    # Clean skin with grain only: nothing to find.
    assert detect_spots(skin_noise(150, 150, seed=5), np.ones((150, 150), np.float32), 300) == []


def test_spots_are_placed_where_they_are_at_every_octave() -> None:
    # Spots answering at the fine and the coarse octaves, near every side of a crop whose
    # sides are no whole number of the octaves' blocks: each found at its centre. Copies
    # reduced by an approximate factor (a 513-pixel side to 65 pixels is 7.9x, not 8x) put
    # them up to 2.7 pixels off towards the far sides.
    h, w = 361, 515
    x = skin_noise(h, w, seed=6)
    places = [(45, 45, 20), (470, 316, 20), (470, 45, 14), (45, 316, 14), (470, 180, 9),
              (260, 316, 9)]
    for cx, cy, d in places:
        x = add_spot(x, cx, cy, d, (0.85, 1.0, 1.15), 0.35)
    spots = detect_spots(x, np.ones((h, w), np.float32), face_size=384)
    for cx, cy, _ in places:
        assert min(math.hypot(s.x - cx, s.y - cy) for s in spots) < 0.5


def test_blemish_removal_heals_a_spot_on_a_real_face(sample_rgb: np.ndarray) -> None:
    face = meiyan.analyze(sample_rgb)[0]
    cheeks = (face.region("cheeks", feather=0) > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(cheeks, cv2.DIST_L2, 5)
    cy, cx = np.unravel_index(np.argmax(depth), depth.shape)
    clean = sample_rgb.astype(np.float32) / 255
    spotted = add_spot(clean, cx, cy, 7, (0.1, 1.0, 0.6), 0.35)
    spotted8 = np.round(spotted * 255).astype(np.uint8)
    res = retouch(spotted8, blemish=1.0, smooth=0, tone=0, whiten=0)
    assert any(math.hypot(s.x - cx, s.y - cy) < 4 and a > 0 for s, a in res.spots())
    yy, xx = np.mgrid[: clean.shape[0], : clean.shape[1]]
    at = np.hypot(xx - cx, yy - cy) <= 7

    def err(img: np.ndarray) -> float:
        return float(np.mean((img[at].astype(float) - sample_rgb[at].astype(float)) ** 2))

    assert 10 * math.log10(err(spotted8) / err(res.image)) > 6.0  # PSNR up by 6 dB or more
    assert res.blemish_mask()[cy, cx] > 0.9


# ------------------------------------------------------------------------------ the main job


def test_strength_zero_everywhere_is_the_identity(sample_rgb: np.ndarray) -> None:
    out = meiyan.beautify(sample_rgb, **ALL_OFF)
    assert out is not sample_rgb and np.array_equal(out, sample_rgb)
    x = sample_rgb.astype(np.float32) / 255
    assert np.array_equal(meiyan.beautify(x, BeautifySettings(**ALL_OFF)), x)
    assert BeautifySettings(**ALL_OFF).is_identity


def test_edits_stay_inside_the_skin_mask(sample_rgb: np.ndarray) -> None:
    res = retouch(sample_rgb, PRESETS["strong"])
    changed = np.abs(res.image.astype(int) - sample_rgb).max(axis=2) > 0
    mask = res.skin_mask()
    assert changed.sum() > 2000  # it did retouch the face
    assert not changed[mask == 0].any()
    # Eyes and lips are not skin.
    face = res.faces[0]
    for name in ("eyes", "upper_lip", "lower_lip"):
        core = cv2.erode((face.region(name, feather=0) > 0.5).astype(np.uint8), np.ones((3, 3)))
        assert mask[core > 0].max() < 0.05, name


def test_no_step_in_the_mask_at_the_feature_margins(portrait: np.ndarray) -> None:
    # Around eyes, brows and lips the mask fades: a hard cut-out would leave an edge between
    # retouched skin and the untouched margin (a ring, brighter and smoother, around the eye).
    # The sample enlarged to a 320 px face: the margins are a few pixels wide there.
    big = cv2.resize(portrait, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    (rec,) = retouch(big, PRESETS["strong"]).crops
    face, size = rec.crop.work_face(), rec.crop.face_size
    hard = feature_mask(face.landmarks, rec.mask.shape, size) > 0
    near = cv2.dilate(hard.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    m = rec.mask
    step = np.maximum(np.abs(np.diff(m, axis=0))[:, :-1], np.abs(np.diff(m, axis=1))[:-1])
    assert m[near & ~hard].max() > 0.5  # the margins border on retouched skin
    assert step[(near & ~hard)[:-1, :-1]].max() < 0.35


def test_a_big_frame_costs_only_its_face(sample_rgb: np.ndarray) -> None:
    canvas = np.full((1400, 1800, 3), 200, np.uint8)
    canvas[600:1112, 900:1412] = sample_rgb
    res = retouch(canvas)
    (crop,) = (c.crop for c in res.crops)
    x0, y0, x1, y1 = crop.box
    assert (x1 - x0) * (y1 - y0) < 0.1 * canvas.shape[0] * canvas.shape[1]
    changed = np.abs(res.image.astype(int) - canvas).max(axis=2) > 0
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert changed.any() and not outside.any()


def test_float32_input_gives_float32_like_uint8(sample_rgb: np.ndarray) -> None:
    x = sample_rgb.astype(np.float32) / 255
    out = meiyan.beautify(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    out8 = meiyan.beautify(sample_rgb)
    assert np.abs(out * 255 - out8).max() <= 2.0


def test_no_face_returns_the_photo_with_a_warning() -> None:
    rng = np.random.default_rng(6)
    scene = cv2.GaussianBlur(rng.random((240, 320, 3), dtype=np.float32), (0, 0), 8)
    scene = (np.clip(0.3 + scene, 0, 1) * 255).astype(np.uint8)
    for skin in ("auto", "color"):  # one way for every mask: unchanged, with a warning
        with pytest.warns(NoFaceWarning, match="no face"):
            out = meiyan.beautify(scene, skin=skin)
        assert np.array_equal(out, scene)
    # The whole frame as skin needs no face.
    patch = add_spot(skin_noise(200, 200, seed=7), 100, 100, 30, (0.0, 1.0, 0.8), 0.2)
    patch = (np.clip(patch, 0, 1) * 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smoothed = meiyan.beautify(patch, skin="none")
    assert not np.array_equal(smoothed, patch)


def test_blemishes_are_sought_in_the_face_and_forehead_not_on_the_neck(
    portrait: np.ndarray,
) -> None:
    # As in ModelScope's face crops: the neck is smoothed and toned, not searched for spots.
    big = cv2.resize(portrait, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    face = meiyan.analyze(big)[0]
    zone = search_zone(face.landmarks, big.shape[:2], face.size)
    (x, y), s = face.landmarks[10], face.size  # top of the mesh: mid-forehead
    chin = face.landmarks[152]
    assert zone[round(y - 0.15 * s), round(x)] == 1  # forehead above the mesh
    assert zone[round(chin[1] + 0.3 * s), round(chin[0])] == 0  # neck
    cheeks = face.region("cheeks", feather=0) > 0.5
    assert zone[cheeks].min() == 1
    res = retouch(big, PRESETS["strong"], faces=[face])
    spots = [(sp.x, sp.y) for sp, _ in res.spots()]
    assert len(spots) > 5 and all(zone[round(sy), round(sx)] == 1 for sx, sy in spots)


def test_small_faces_get_a_warning_and_no_blemish_removal(sample_rgb: np.ndarray) -> None:
    small = cv2.resize(sample_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    res = retouch(small)
    assert any("under 100" in w for w in res.warnings)
    assert res.crops and all(not c.spots and c.blemish == 0 for c in res.crops)
    assert not np.array_equal(res.image, small)


def test_settings_presets_and_validation() -> None:
    assert BeautifySettings() == PRESETS["natural"]
    strong = BeautifySettings.preset("strong", smooth=0.1)
    assert strong.smooth == 0.1 and strong.tone == PRESETS["strong"].tone
    with pytest.raises(ValueError, match="preset"):
        BeautifySettings.preset("glam")
    with pytest.raises(ValueError, match="freckles"):
        BeautifySettings(freckles="some")
    with pytest.raises(ValueError, match="whiten"):
        BeautifySettings(whiten=1.5)


def test_layer_windows_tile_into_the_whole_upsampled_layer() -> None:
    layer = np.random.default_rng(8).random((30, 40, 3), dtype=np.float32)
    scale, size = (2.5, 2.5), (100, 75)
    whole = upsample_window(layer, scale, (0, 0), size)
    top = upsample_window(layer, scale, (0, 0), (100, 33))
    bottom = upsample_window(layer, scale, (0, 33), (100, 42))
    assert np.array_equal(np.vstack([top, bottom]), whole)
    assert np.abs(whole - cv2.resize(layer, size, interpolation=cv2.INTER_LINEAR)).max() < 0.05


# ------------------------------------------------------------------------------- command line


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def run(*args: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(main, list(args))


def test_cli_keeps_exif_and_icc_and_writes_compare_and_masks(
    tmp_path: Path, sample_rgb: np.ndarray
) -> None:
    src = tmp_path / "in" / "face.jpg"
    src.parent.mkdir()
    exif = Image.Exif()
    exif[0x013B] = "Jane Doe"  # Artist
    icc = srgb_icc()
    Image.fromarray(sample_rgb).save(src, quality=95, icc_profile=icc, exif=exif.tobytes())
    out = tmp_path / "out"
    res = run("beautify", str(src), "-o", str(out), "--compare", "--save-masks")
    assert res.exit_code == 0, res.output
    with Image.open(out / "face.jpg") as im:
        assert im.info.get("icc_profile") == icc
        assert im.getexif()[0x013B] == "Jane Doe"
    result = read_image(out / "face.jpg").pixels
    assert not np.array_equal(result, read_image(src).pixels)
    assert read_image(out / "face_compare.jpg").pixels.shape == (512, 1024, 3)
    for name in ("face_skin.png", "face_blemish.png"):
        with Image.open(out / name) as im:
            assert im.mode == "L" and im.size == (512, 512)


def test_cli_strength_zero_and_no_face(tmp_path: Path, sample_rgb: np.ndarray) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(sample_rgb).save(folder / "face.png")
    Image.fromarray(np.full((64, 96, 3), 90, np.uint8)).save(folder / "wall.png")
    out = tmp_path / "out"
    args = ["--smooth", "0", "--tone", "0", "--blemish", "0", "--whiten", "0"]
    assert run("beautify", str(folder), "-o", str(out), *args).exit_code == 0
    assert np.array_equal(read_image(out / "face.png").pixels, sample_rgb)
    res = run("beautify", str(folder / "wall.png"), "-o", str(tmp_path / "o2"))
    assert res.exit_code == 0 and "no face" in res.stderr
    assert np.array_equal(read_image(tmp_path / "o2" / "wall.png").pixels[0, 0], [90, 90, 90])


@pytest.mark.parametrize(
    "command", [["beautify", "--preset", "strong"], ["smooth"], ["makeup", "--look", "party"]]
)
def test_cli_keeps_16_bits(command: list[str], tmp_path: Path, sample_rgb: np.ndarray) -> None:
    """Values below 8-bit resolution survive: a grey 16-bit border far from the face comes back
    exactly, and the retouched pixels are not 8-bit values scaled by 257."""
    rng = np.random.default_rng(0)
    deep = np.pad(sample_rgb.astype(np.uint16) * 256, ((96, 96), (96, 96), (0, 0)))
    deep[:96], deep[-96:], deep[:, :96], deep[:, -96:] = 30000, 30000, 30000, 30000
    deep += rng.integers(0, 256, deep.shape, np.uint16)  # detail below 8-bit resolution
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), deep[..., ::-1])  # OpenCV writes BGR
    res = run(command[0], str(src), "-o", str(tmp_path / "out"), *command[1:])
    assert res.exit_code == 0, res.output
    out = read_image(tmp_path / "out" / "deep.png").pixels
    assert out.dtype == np.uint16
    changed = (out != deep).any(axis=2)
    assert changed.sum() > 1000
    border = np.ones(deep.shape[:2], bool)
    border[96:-96, 96:-96] = False
    np.testing.assert_array_equal(out[border], deep[border])
    assert (out[changed] % 257 != 0).mean() > 0.9  # finer than 8 bits where retouched
