"""Robustness of the ``auto`` skin mask: hair is not skin (CelebA-HQ's hair masks), and the
sample portrait keeps its mask under other light and other skin tones."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from meiyan.face import analyze
from meiyan.skin import skin_mask
from meiyan.train.datasets import read_gray, read_rgb

HAIR_SKIN = 0.05
"""Share of CelebA-HQ validation hair marked skin (mask >= 0.5) allowed: as the mean of the
photos' shares and pooled over all their hair pixels. Measured (issue 12's network): mean
3.1%, pooled 2.2%; 23 of the 153 photos have over 5% of their hair marked skin, mostly where
caps leave little hair and its mask's edge dominates (6 over 10%; 28580, where no face is found
and the colour rule stands in, 90%). The network shipped before: mean 32.7%, 128 over 5%."""
KEEPS_MASK = 0.9
"""IoU of the altered photo's mask with the original's that the alterations must keep."""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@pytest.mark.slow
def test_hair_is_not_skin_on_celeba(real_data: Path) -> None:
    """Under ``auto`` (the ``skin_mask`` job), at most 5% of the hair of CelebA-HQ's validation
    faces is skin: on average over the photos and over all their hair pixels."""
    celeba = real_data / "celeba-hq-1k" / "validation"
    if not celeba.is_dir():
        pytest.skip(f"{celeba} not found (../shared/data or $MEIYAN_DATA)")
    shares, no_face = {}, []
    for path in sorted((celeba / "images").glob("*.jpg")):
        image = read_rgb(path)
        hair = read_gray(celeba / "hair" / f"{path.stem}.png") >= 128
        if not hair.any():
            continue
        faces = analyze(image)
        if not faces:
            no_face.append(path.stem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = skin_mask(image, "auto", faces=faces, job="skin_mask") >= 0.5
        shares[path.stem] = (int(mask[hair].sum()), int(hair.sum()))
    assert len(shares) >= 140, f"only {len(shares)} photos with hair in {celeba}"
    mean = float(np.mean([a / n for a, n in shares.values()]))
    pooled = sum(a for a, _ in shares.values()) / sum(n for _, n in shares.values())
    worst = sorted(shares.items(), key=lambda kv: -kv[1][0] / kv[1][1])[:8]
    shown = [(k, f"{a / n:.0%}") for k, (a, n) in worst]
    detail = f"mean {mean:.1%}, pooled {pooled:.1%}; worst {shown}"
    detail += f"; no face found in {no_face}" if no_face else ""
    assert mean <= HAIR_SKIN, detail
    assert pooled <= HAIR_SKIN, detail


# The alterations apply to the whole photo, as a change of light or of sitter would. Light is
# changed in linear RGB (white balance gains, exposure); skin tone in CIELAB (lightness and
# chroma, hue kept), so that skin stays a plausible skin colour.


def _linear(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    x = np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.round(x * 255).astype(np.uint8)


def relit(gains: tuple[float, float, float]) -> Callable[[np.ndarray], np.ndarray]:
    """Light of another colour or strength: linear RGB times per-channel ``gains``."""
    return lambda rgb: _srgb(_linear(rgb) * np.array(gains, np.float32))


def toned(lightness: float, lift: float, chroma: float) -> Callable[[np.ndarray], np.ndarray]:
    """Another skin tone: CIELAB ``L * lightness + lift`` and chroma times ``chroma``, hue kept."""

    def alter(rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        lab[..., 0] = np.clip(lab[..., 0] * lightness + lift, 0, 100)
        lab[..., 1:] *= chroma
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)

    return alter


ALTERATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "warm": relit((1.2, 1.0, 0.7)),  # warm light (tungsten-like cast), about the same luminance
    "cold": relit((0.8, 1.0, 1.3)),  # cold light (shade, overcast)
    "dark": relit((0.35, 0.35, 0.35)),  # 1.5 stops under
    "bright": relit((1.6, 1.6, 1.6)),  # 0.7 stops over, highlights clipped
    "darker_skin": toned(0.65, 0.0, 1.15),  # cheeks from about (198, 167, 141) to (133, 102, 75)
    "paler_skin": toned(0.85, 15.0, 0.6),  # cheeks to about (201, 181, 165)
}


@pytest.fixture(scope="module")
def reference(portrait: np.ndarray) -> np.ndarray:
    return skin_mask(portrait, "auto") >= 0.5


@pytest.mark.parametrize("name", list(ALTERATIONS))
def test_mask_survives_light_and_skin_tone(
    name: str, portrait: np.ndarray, reference: np.ndarray
) -> None:
    """The sample portrait altered keeps its face and its ``auto`` mask (IoU >= 0.9)."""
    altered = ALTERATIONS[name](portrait)
    assert np.abs(altered.astype(np.int16) - portrait).mean() > 5, "alteration too weak"
    faces = analyze(altered)
    assert len(faces) == 1, f"{len(faces)} faces found in the {name} photo"
    mask = skin_mask(altered, "auto", faces=faces) >= 0.5
    score = iou(mask, reference)
    ratio = mask.sum() / reference.sum()
    assert score >= KEEPS_MASK, f"{name}: IoU {score:.3f}, mask area x{ratio:.2f} of the original"
