"""Edge-preserving filters: smoothing and edge properties, references, WLS system, validation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from meiyan.filters import bilateral, guided, local_mean, smart_blur, surface_blur, wls
from meiyan.filters.wls import wls_solve, wls_system

FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "bilateral": bilateral,
    "guided": guided,
    "local_mean": local_mean,
    "smart_blur": smart_blur,
    "surface_blur": surface_blur,
    "wls": wls,
}
BORDER = 8
"""Pixels left out of the statistics at the image border."""


def _noisy_flat() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return np.clip(0.5 + rng.normal(0.0, 0.03, (64, 64, 3)), 0.0, 1.0).astype(np.float32)


def _noisy_step() -> np.ndarray:
    """0.25 | 0.75 vertical step between columns 31 and 32, with mild noise (sigma 0.01)."""
    rng = np.random.default_rng(99)
    step = np.full((64, 64, 3), 0.25)
    step[:, 32:] = 0.75
    return np.clip(step + rng.normal(0.0, 0.01, step.shape), 0.0, 1.0).astype(np.float32)


def _smooth_image(h: int = 48, w: int = 56) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / 10.0
    img = np.stack([np.sin(xx + yy), np.cos(0.7 * xx - yy), np.sin(0.5 * xx * yy / 4.0)], axis=2)
    return (0.5 + 0.3 * img).astype(np.float32)


def _textured_image(seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    """Smooth colour pattern, a step and noise: every filter has something to keep and remove."""
    rng = np.random.default_rng(seed)
    img = 0.8 * _smooth_image(h, w) + 0.2 * (np.arange(w) >= w // 2)[None, :, None]
    img = img + rng.normal(0.0, 0.03, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("name", FILTERS)
def test_reduces_noise_on_flat_patch(name: str) -> None:
    noisy = _noisy_flat()
    out = FILTERS[name](noisy)
    b = BORDER
    before, after = noisy[b:-b, b:-b].std(), out[b:-b, b:-b].std()
    assert after <= 0.4 * before, f"{name}: std {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", FILTERS)
def test_keeps_step_edge(name: str) -> None:
    step = _noisy_step()
    out = FILTERS[name](step)
    rows = slice(BORDER, -BORDER)
    # Columns 2 to 4 px from the edge on each side (31 and 32 are the pixels touching it).
    left, right = out[rows, 27:30].mean(), out[rows, 34:37].mean()
    assert right - left >= 0.9 * 0.5, f"{name}: contrast {right - left:.4f} of 0.5"


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("shape", [(37, 53, 3), (3, 4, 3), (1, 1, 3)])
def test_output_contract(name: str, shape: tuple[int, int, int]) -> None:
    img = np.random.default_rng(5).random(shape, dtype=np.float32)
    img[0, 0] = (0.0, 1.0, 0.0)
    before = img.copy()
    out = FILTERS[name](img)
    assert out.dtype == np.float32
    assert out.shape == img.shape
    assert np.isfinite(out).all()
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    np.testing.assert_array_equal(img, before)  # the input is not modified


@pytest.mark.parametrize("name", FILTERS)
def test_rejects_bad_images(name: str) -> None:
    f = FILTERS[name]
    good = np.full((8, 8, 3), 0.5, np.float32)
    with pytest.raises(TypeError, match="float32"):
        f((good * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        f(good[..., 0])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        f(np.full((8, 8, 4), 0.5, np.float32))
    with pytest.raises(TypeError, match="NumPy array"):
        f(good.tolist())
    bad = good.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(bad)


@pytest.mark.parametrize(
    ("f", "kwargs", "match"),
    [
        (bilateral, {"radius": 0}, "radius"),
        (bilateral, {"radius": 2.5}, "radius"),
        (bilateral, {"sigma_space": -1.0}, "sigma_space"),
        (bilateral, {"sigma_color": 0.0}, "sigma_color"),
        (surface_blur, {"radius": -3}, "radius"),
        (surface_blur, {"threshold": 0.0}, "threshold"),
        (smart_blur, {"radius": 0}, "radius"),
        (smart_blur, {"threshold": -0.1}, "threshold"),
        (local_mean, {"radius": 0}, "radius"),
        (local_mean, {"noise_var": 0.0}, "noise_var"),
        (wls, {"lam": 0.0}, "lam"),
        (wls, {"alpha": float("nan")}, "alpha"),
        (wls, {"method": "multigrid"}, "method"),
    ],
)
def test_rejects_bad_parameters(f: Callable, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        f(np.full((8, 8, 3), 0.5, np.float32), **kwargs)


# --- Guided filter: direct reference from He et al. (2013), eqs. (7)-(8) and (14)-(16). ---


def _window_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window from explicit window sums of the mirrored array."""
    pad = [(r, r), (r, r)] + [(0, 0)] * (x.ndim - 2)
    s = np.pad(x.astype(np.float64), pad, mode="reflect").cumsum(0).cumsum(1)
    s = np.pad(s, [(1, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))
    k = 2 * r + 1
    h, w = x.shape[:2]
    total = s[k : k + h, k : k + w] - s[:h, k : k + w] - s[k : k + h, :w] + s[:h, :w]
    return total / (k * k)


def _guided_reference_gray(I: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    mean_I, mean_p = _window_mean(I, r), _window_mean(p, r)
    a = (_window_mean(I * p, r) - mean_I * mean_p) / (_window_mean(I * I, r) - mean_I**2 + eps)
    b = mean_p - a * mean_I
    return _window_mean(a, r) * I + _window_mean(b, r)


def _guided_reference_color(I: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    mean_I = _window_mean(I, r)
    sigma = _window_mean(I[..., :, None] * I[..., None, :], r)
    sigma -= mean_I[..., :, None] * mean_I[..., None, :]
    sigma += eps * np.eye(3)
    out = np.empty(p.shape)
    for c in range(3):
        pc = p[..., c].astype(np.float64)
        mean_p = _window_mean(pc, r)
        cov = _window_mean(I * pc[..., None], r) - mean_I * mean_p[..., None]
        a = np.linalg.solve(sigma, cov[..., None])[..., 0]
        b = mean_p - (a * mean_I).sum(axis=2)
        out[..., c] = (_window_mean(a, r) * I).sum(axis=2) + _window_mean(b, r)
    return out


@pytest.mark.parametrize("guide_kind", ["self", "grey", "colour"])
def test_guided_matches_reference(guide_kind: str) -> None:
    p = _textured_image(seed=1)
    q = _textured_image(seed=2)[:, ::-1].copy()
    r, eps = 4, 0.005
    if guide_kind == "self":
        guide = None
        ref = np.stack(
            [_guided_reference_gray(p[..., c], p[..., c], r, eps) for c in range(3)], axis=2
        )
    elif guide_kind == "grey":
        guide = q.mean(axis=2)
        ref = np.stack([_guided_reference_gray(guide, p[..., c], r, eps) for c in range(3)], axis=2)
    else:
        guide = q
        ref = _guided_reference_color(q.astype(np.float64), p, r, eps)
    out = guided(p, guide, radius=r, eps=eps, subsample=1)
    assert np.abs(out - ref).max() < 1e-3
    assert np.abs(out - p).max() > 0.02  # the comparison is not trivially "output = input"


@pytest.mark.parametrize(
    ("subsample", "rms_bound", "max_bound"), [(2, 0.004, 0.005), (4, 0.01, 0.015)]
)
def test_fast_guided_close_to_exact_on_smooth_image(
    subsample: int, rms_bound: float, max_bound: float
) -> None:
    img = _smooth_image(96, 128)
    exact = guided(img, radius=8, eps=0.01)
    diff = np.abs(guided(img, radius=8, eps=0.01, subsample=subsample) - exact)
    # Measured: RMS 0.0025 / 0.0071 and max 0.0028 / 0.0089 away from the border (subsample
    # 2 / 4); the 16 px next to the border differ more (max 0.021 / 0.044).
    assert np.sqrt((diff**2).mean()) < rms_bound
    assert diff[16:-16, 16:-16].max() < max_bound
    assert np.abs(exact - img).max() > 0.1  # the filter does change this image


# --- WLS (Farbman et al. 2008) and its fast approximation (Min et al. 2014). ---


def test_wls_exact_solves_its_system() -> None:
    img = _textured_image(seed=3)
    A, b = wls_system(img)
    n = img.shape[0] * img.shape[1]
    assert A.shape == (n, n)
    assert abs(A - A.T).max() == 0.0
    np.testing.assert_allclose(A @ np.ones(n), np.ones(n), atol=1e-9)  # unit row sums
    u = wls_solve(A, b)
    assert np.linalg.norm(A @ u - b) / np.linalg.norm(b) < 1e-5
    out = wls(img, method="exact")
    # The public output is that solution rounded to float32 (no clipping was needed).
    np.testing.assert_allclose(out.reshape(n, 3), u, atol=1e-6)
    assert np.abs(out - img).max() > 0.05
    np.testing.assert_array_equal(wls(img), out)  # "auto" is exact at this size


def test_wls_fast_close_to_exact() -> None:
    img = _textured_image(seed=4, h=72, w=96)
    before = img.copy()
    exact = wls(img, method="exact")
    fast = wls(img, method="fast")
    np.testing.assert_array_equal(img, before)
    diff = np.abs(fast - exact)
    # Measured: RMS 0.0066 and max 0.030, against an RMS change (exact - input) of 0.057.
    assert np.sqrt((diff**2).mean()) < 0.009
    assert diff.max() < 0.05
    assert np.sqrt(((exact - img) ** 2).mean()) > 0.04


# --- Window filters against direct per-pixel references with explicit loops. ---


def _loop_reference(img: np.ndarray, r: int, weight: Callable, disc: bool = False) -> np.ndarray:
    """``sum w I / sum w`` per pixel; ``weight(diff, dy, dx)`` is per channel unless it returns
    one value per neighbour. ``disc`` keeps only offsets with ``dy^2 + dx^2 <= r^2``."""
    x = img.astype(np.float64)
    padded = np.pad(x, [(r, r), (r, r), (0, 0)], mode="reflect")
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = (dy**2 + dx**2 <= r * r) if disc else np.ones(dy.shape, bool)
    out = np.empty_like(x)
    for y in range(x.shape[0]):
        for xx in range(x.shape[1]):
            window = padded[y : y + 2 * r + 1, xx : xx + 2 * r + 1][keep]
            w = weight(window - x[y, xx], dy[keep], dx[keep])
            w = w if w.ndim == 2 else w[:, None]
            out[y, xx] = (w * window).sum(axis=0) / w.sum(axis=0)
    return out


def test_surface_blur_matches_loop_reference() -> None:
    img = _textured_image(seed=5, h=32, w=32)
    r, t = 3, 0.08
    ref = _loop_reference(img, r, lambda d, dy, dx: np.maximum(0.0, 1.0 - np.abs(d) / (2.5 * t)))
    out = surface_blur(img, radius=r, threshold=t)
    assert np.abs(out - ref).max() < 1e-5
    assert np.abs(out - img).max() > 0.02


def test_smart_blur_matches_loop_reference() -> None:
    img = _textured_image(seed=6, h=32, w=32)
    r, t = 4, 0.06

    def weight(d: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        g = np.exp(-(dy**2 + dx**2) / (2.0 * (r / 2.0) ** 2))[:, None]
        return g * (np.abs(d) <= t)

    out = smart_blur(img, radius=r, threshold=t)
    assert np.abs(out - _loop_reference(img, r, weight)).max() < 1e-5
    assert np.abs(out - img).max() > 0.02


def test_bilateral_matches_loop_reference() -> None:
    """OpenCV's engine as documented: disc window, one weight from the L1 colour distance."""
    img = _textured_image(seed=7, h=24, w=24)
    r, s_space, s_color = 3, 1.5, 0.1

    def weight(d: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        l1 = np.abs(d).sum(axis=1)
        return np.exp(-(dy**2 + dx**2) / (2 * s_space**2) - l1**2 / (2 * s_color**2))

    out = bilateral(img, radius=r, sigma_space=s_space, sigma_color=s_color)
    assert np.abs(out - _loop_reference(img, r, weight, disc=True)).max() < 1e-4


def test_local_mean_matches_lee_formula() -> None:
    img = _textured_image(seed=8, h=24, w=24).astype(np.float64)
    r, nv = 2, 0.002
    padded = np.pad(img, [(r, r), (r, r), (0, 0)], mode="reflect")
    ref = np.empty_like(img)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            window = padded[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1, 3)
            m, v = window.mean(axis=0), window.var(axis=0)
            signal = np.maximum(v - nv, 0.0)
            ref[y, x] = m + signal / (signal + nv) * (img[y, x] - m)
    out = local_mean(img.astype(np.float32), radius=r, noise_var=nv)
    assert np.abs(out - ref).max() < 1e-5
