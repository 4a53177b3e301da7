"""Colour-space skin rules and the segmenter registry."""

from __future__ import annotations

import numpy as np
import pytest

from meiyan.engines import EngineError
from meiyan.skin import SLOT, ColourRule, choices, skin_mask
from meiyan.skin.color import color_mask, hsv_mask, rgb_mask, ycrcb_mask

RULES = [ycrcb_mask, hsv_mask, rgb_mask]
SKIN_TONES = [(224, 172, 140), (198, 134, 66), (141, 85, 36), (255, 205, 180)]
NOT_SKIN = [(40, 90, 200), (60, 170, 60), (20, 20, 20), (245, 245, 245), (128, 128, 128)]


def swatches(colours: list[tuple[int, int, int]]) -> np.ndarray:
    return np.concatenate([np.full((16, 16, 3), c, np.uint8) for c in colours], axis=1)


@pytest.mark.parametrize("rule", RULES)
def test_rules_accept_skin_tones(rule) -> None:
    m = rule(swatches(SKIN_TONES[:2]))
    assert m.dtype == np.float32 and m.shape == (16, 32)
    # Soft rules: a tone near a bound gets a value between 0.5 and 1, still skin at 0.5.
    assert m[4:12, 4:12].min() > 0.5 and m[4:12, 20:28].min() > 0.5
    assert m[4:12, 4:12].max() > 0.99


@pytest.mark.parametrize("rule", RULES)
def test_rules_reject_other_colours(rule) -> None:
    m = rule(swatches(NOT_SKIN))
    centres = [m[8, 8 + 16 * i] for i in range(len(NOT_SKIN))]
    assert max(centres) < 0.1


@pytest.mark.parametrize("rule", RULES)
def test_masks_are_soft(rule) -> None:
    """A hard skin/non-skin edge gives intermediate values: the mask is feathered."""
    m = rule(swatches([SKIN_TONES[0], NOT_SKIN[0]]))
    edge = m[8, 12:20]
    assert ((edge > 0.05) & (edge < 0.95)).any()
    assert m.min() >= 0 and m.max() <= 1


def test_float_and_uint8_inputs_agree() -> None:
    img = swatches(SKIN_TONES + NOT_SKIN)
    np.testing.assert_allclose(ycrcb_mask(img), ycrcb_mask(img.astype(np.float32) / 255), atol=1e-5)


def test_registry_names_and_errors() -> None:
    assert {"ycrcb", "hsv", "rgb", "color", "auto", "classic"} <= set(choices())
    with pytest.raises(EngineError, match="unknown skin engine"):
        skin_mask(swatches(SKIN_TONES), "nope")
    with pytest.raises(ValueError, match="unknown colour rule"):
        color_mask(swatches(SKIN_TONES), rule="nope")


def test_registry_is_lazy_and_caches() -> None:
    calls = []

    def factory():
        calls.append(1)
        return ColourRule(lambda img: np.ones(img.shape[:2], np.float32))

    SLOT.register("test-lazy", factory)
    try:
        assert calls == []
        img = swatches(SKIN_TONES)
        skin_mask(img, "test-lazy")
        skin_mask(img, "test-lazy")
        assert calls == [1]
    finally:
        SLOT.unregister("test-lazy")
    assert "test-lazy" not in choices()
