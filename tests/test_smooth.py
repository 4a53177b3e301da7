"""The smoothing pipeline, high-pass detail reduction and beautify."""

from __future__ import annotations

import numpy as np
import pytest

import meiyan
from meiyan.filters.guided import FastGuidedRows
from meiyan.filters.highpass import high_pass, highpass_reduce
from meiyan.retouch.smooth import FILTER_SETTINGS, smooth_float


def noisy_flat(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.6 + rng.normal(0, 0.03, (size, size, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_smooth_keeps_shape_and_dtype(dtype: type) -> None:
    x = noisy_flat()
    img = (x * 255).astype(np.uint8) if dtype == np.uint8 else x
    out = meiyan.smooth(img, skin="none")
    assert out.shape == img.shape and out.dtype == img.dtype


def test_strength_zero_is_identity(sample_rgb: np.ndarray) -> None:
    out = meiyan.smooth(sample_rgb, strength=0.0, skin="none")
    assert np.array_equal(out, sample_rgb) and out is not sample_rgb


@pytest.mark.parametrize("name", sorted(FILTER_SETTINGS))
def test_every_filter_reduces_noise_in_the_pipeline(name: str) -> None:
    x = noisy_flat()
    out = smooth_float(x, filter=name, strength=1.0, texture=0.0, scale=1.0)
    inner = (slice(8, -8), slice(8, -8))
    assert out[inner].std() < 0.7 * x[inner].std()


def test_texture_add_back_keeps_fine_grain() -> None:
    x = noisy_flat(1)
    flat = smooth_float(x, strength=1.0, texture=0.0)
    grainy = smooth_float(x, strength=1.0, texture=1.0)
    assert grainy.std() > 1.2 * flat.std()


def test_mask_confines_the_change() -> None:
    x = noisy_flat(2)
    mask = np.zeros(x.shape[:2], np.float32)
    mask[:, :48] = 1.0
    out = smooth_float(x, mask, strength=1.0)
    assert np.array_equal(out[:, 48:], x[:, 48:])
    assert np.abs(out[:, :40] - x[:, :40]).mean() > 0.005


def test_streamed_bands_match_whole_frame_filter() -> None:
    """The banded fast guided filter equals the whole-frame one, for several band sizes."""
    rng = np.random.default_rng(3)
    x = rng.random((203, 150, 3), dtype=np.float32)
    ref = FastGuidedRows(x, radius=8, eps=0.01, subsample=3)
    whole = ref.rows(x, 0)
    for band in (1, 17, 64):
        bands = np.concatenate([ref.rows(x[y : y + band], y) for y in range(0, 203, band)])
        np.testing.assert_allclose(bands, whole, atol=1e-6)


def test_smooth_uint8_and_float_agree() -> None:
    x = noisy_flat(4)
    u = (x * 255 + 0.5).astype(np.uint8)
    a = meiyan.smooth(u, skin="none").astype(np.float32) / 255
    b = meiyan.smooth(u.astype(np.float32) / 255, skin="none")
    assert np.abs(a - b).max() <= 1.5 / 255


def test_smooth_validates() -> None:
    x = noisy_flat()
    with pytest.raises(ValueError, match="unknown filter"):
        meiyan.smooth(x, filter="nope")
    with pytest.raises(ValueError, match="strength"):
        meiyan.smooth(x, strength=1.5)
    with pytest.raises(ValueError, match="unknown skin engine"):
        meiyan.smooth(x, skin="nope")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        meiyan.smooth(x[..., 0])
    with pytest.raises(TypeError):
        meiyan.smooth(x.astype(np.int32))


def dark_spot_on_grain(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = np.clip(0.7 + rng.normal(0, 0.01, (64, 64, 3)), 0, 1).astype(np.float32)
    yy, xx = np.mgrid[:64, :64]
    spot = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 3.0**2)).astype(np.float32)
    return clean, np.clip(clean - 0.15 * spot[..., None], 0, 1)


def test_highpass_reduce_lightens_spot_and_keeps_grain() -> None:
    _, spotted = dark_spot_on_grain()
    out = highpass_reduce(spotted, strength=1.0)
    c = (slice(29, 36), slice(29, 36))
    assert out[c].mean() - spotted[c].mean() > 0.06  # most of the 0.1-deep spot is gone
    far = (slice(0, 16), slice(0, 16))
    grain_before = high_pass(spotted, 1.0)[far].std()
    grain_after = high_pass(out, 1.0)[far].std()
    assert grain_after > 0.9 * grain_before  # fine texture away from the spot stays


def test_highpass_reduce_strength_zero_is_identity() -> None:
    _, spotted = dark_spot_on_grain()
    assert np.array_equal(highpass_reduce(spotted, strength=0.0), spotted)


def test_beautify_all_zero_is_identity(sample_rgb: np.ndarray) -> None:
    out = meiyan.beautify(sample_rgb, smooth=0, tone=0, blemish=0, whiten=0, detail=0)
    assert np.array_equal(out, sample_rgb)


def test_beautify_settings_validate() -> None:
    with pytest.raises(ValueError, match="smooth"):
        meiyan.BeautifySettings(smooth=2.0)
    with pytest.raises(ValueError, match="unknown filter"):
        meiyan.BeautifySettings(filter="nope")


def test_beautify_changes_only_skin(sample_rgb: np.ndarray) -> None:
    from meiyan.skin import skin_mask

    out = meiyan.beautify(sample_rgb, skin="color")
    mask = skin_mask(sample_rgb, "color")
    changed = np.abs(out.astype(int) - sample_rgb).max(axis=2) > 0
    assert changed.any()
    assert not changed[mask == 0].any()


def test_streamed_columns_match_whole_rows() -> None:
    """Rows of a window of columns are the same columns of the whole rows."""
    rng = np.random.default_rng(6)
    x = rng.random((90, 131, 3), dtype=np.float32)
    for s in (1, 3):
        ref = FastGuidedRows(x, radius=6, eps=0.01, subsample=s)
        whole = ref.rows(x[20:50], 20)
        assert np.array_equal(ref.rows(x[20:50, 37:101], 20, 37), whole[:, 37:101])


@pytest.mark.parametrize("name", ["guided", "bilateral"])
def test_bands_over_the_skin_columns_match_whole_rows(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bands worked out only over the columns their skin needs give the full-width result."""
    import meiyan.retouch.smooth as smoothing

    x = noisy_flat(7, 200)
    yy, xx = np.mgrid[:200, :200]
    mask = (np.abs(xx - 40 - 0.6 * yy) < 12).astype(np.float32)
    mask[128:192] = 0.0  # a band of rows without skin
    ref = meiyan.smooth(x, filter=name, skin="none")
    narrow = smoothing._smooth(
        x, mask, filter=name, strength=1.0, texture=0.5, scale=1.0, detail_threshold=0.03
    )
    monkeypatch.setattr(smoothing, "_band_columns", lambda m, width: (0, width))
    full = smoothing._smooth(
        x, mask, filter=name, strength=1.0, texture=0.5, scale=1.0, detail_threshold=0.03
    )
    assert np.array_equal(narrow, full)
    assert np.array_equal(narrow[mask == 0], x[mask == 0])
    assert not np.array_equal(narrow, x) and not np.array_equal(ref, x)


def test_smooth_finds_faces_and_person_as_given(portrait: np.ndarray, face: object) -> None:
    """The person mask made beside the face pass gives what the segmenter makes itself."""
    assert np.array_equal(meiyan.smooth(portrait), meiyan.smooth(portrait, faces=[face]))


def test_a_large_photo_is_smoothed_from_the_segmenters_coarse_mask(
    portrait: np.ndarray, monkeypatch
) -> None:
    """On a large photo the U-Net's mask is not enlarged to the photo's size for smoothing: smooth
    samples its coarse mask at the working pixels, as enlarging and reducing it would."""
    import cv2

    import meiyan.skin as skin

    big = cv2.resize(portrait, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 4.2 MP
    faces = meiyan.analyze(big)
    real = skin.segment
    shapes: list[tuple[int, ...]] = []

    def spy(*args: object, **kwargs: object) -> np.ndarray:
        mask = real(*args, **kwargs)
        shapes.append(mask.shape)
        return mask

    monkeypatch.setattr(skin, "segment", spy)
    out = meiyan.smooth(big, skin="unet", faces=faces)
    assert len(shapes) == 1 and shapes[0][0] < big.shape[0] / 1.2  # the coarse mask
    monkeypatch.setattr(skin, "segment", lambda *args, coarse=False: real(*args))
    full = meiyan.smooth(big, skin="unet", faces=faces)
    diff = np.abs(out.astype(np.int16) - full)
    assert diff.max() <= 3 and (diff > 0).mean() < 0.05
    assert np.abs(out.astype(np.int16) - big).max() > 10  # and it smooths
