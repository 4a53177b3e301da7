"""The ``abpn`` retouching engine: ABPN's blend layer for blemishes and tone, onnxruntime only.

T. Lei et al., "ABPN: Adaptive Blend Pyramid Network for Real-Time Local Retouching of Ultra
High-Resolution Photo", CVPR 2022. Same call as :class:`meiyan.retouch.beautify.ClassicRetouch`
and the same face crops (:mod:`meiyan.retouch.crops`): per crop, the shipped network
(``abpn.onnx``, :mod:`meiyan.retouch.abpn.network`) runs on the part of the working image
that the skin spans and gives a blend layer and a blemish mask. The layer is applied by the
network's ABM at working resolution and taken back to a soft-light gain (exactly the layer
itself when the ABM is soft light), which is scaled towards neutral by ``blemish`` inside the
blemish mask and by ``tone`` elsewhere, times the skin mask. Whitening and smoothing are the
classical stages of :mod:`meiyan.retouch.beautify` on top; everything reaches the
full-resolution crop through :func:`meiyan.retouch.crops.paste` (bilinear layers, rounded).
Moles are kept unless ``moles`` is set (the network's ``moles`` input); ``freckles`` is not
honoured (the network was not trained on freckles).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import cv2
import numpy as np

from meiyan._array import Mask
from meiyan.face.window import Window, support
from meiyan.retouch.beautify import (
    BeautifySettings,
    ClassicRetouch,
    CropResult,
    _crop_masks,
    _smoothing,
    _tone_gain,
)
from meiyan.retouch.blend import apply_gain, gain_for
from meiyan.retouch.crops import paste, working_image
from meiyan.retouch.smooth import working_scale

MODEL = "abpn"
_MULTIPLE = 32


@dataclass
class AbpnCropResult(CropResult):
    """A :class:`CropResult` with the network's blemish mask (working resolution, 0 outside
    the window it ran on)."""

    blemish_map: np.ndarray


class AbpnNetwork:
    """The ONNX network: ``(H, W, 3)`` float32 image to its blend layer and blemish mask."""

    def __init__(self, model: str = MODEL, threads: int | None = None) -> None:
        from meiyan.models import onnx_session

        self.session = onnx_session(model, threads=threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        abm = json.loads(meta["meiyan.abm"])
        self.j = np.asarray(abm["j"], np.float32)
        self.k = np.asarray(abm["k"], np.float32)

    def __call__(self, image: np.ndarray, moles: bool) -> tuple[np.ndarray, np.ndarray]:
        """Blend layer ``(H, W, 3)`` and blemish mask ``(H, W)`` of a float32 RGB image."""
        h, w = image.shape[:2]
        ph, pw = -h % _MULTIPLE, -w % _MULTIPLE
        x = image
        if ph or pw:
            border = cv2.BORDER_REFLECT_101 if min(h, w) > max(ph, pw) else cv2.BORDER_REPLICATE
            x = cv2.copyMakeBorder(image, 0, ph, 0, pw, border)
        inputs = {
            "image": np.ascontiguousarray(x.transpose(2, 0, 1)[None]),
            "moles": np.array([[1.0 if moles else 0.0]], np.float32),
        }
        layer, mask = self.session.run(["layer", "mask"], inputs)
        mask = cv2.resize(mask[0, 0], (w + pw, h + ph), interpolation=cv2.INTER_LINEAR)
        return layer[0].transpose(1, 2, 0)[:h, :w], mask[:h, :w]

    def blend(self, image: np.ndarray, layer: np.ndarray) -> np.ndarray:
        """The network's ABM: ``(sum_i j_i g_i(I)) B + sum_i k_i g_i(I)``, ``g = (1, I, I^2)``."""
        sq = image * image
        a = self.j[0] + self.j[1] * image + self.j[2] * sq
        c = self.k[0] + self.k[1] * image + self.k[2] * sq
        return a * layer + c


class AbpnRetouch(ClassicRetouch):
    """The ``abpn`` retouching engine (see the module docstring)."""

    def __init__(self, network: AbpnNetwork | None = None) -> None:
        self.network = network or AbpnNetwork()

    def retouch_crop(
        self, out: np.ndarray, crop: Window, s: BeautifySettings, person: Mask | None = None
    ) -> AbpnCropResult:
        """Retouch one crop of ``out`` in place; later crops read what earlier ones wrote."""
        work = working_image(out, crop)
        mask, _ = _crop_masks(work, crop, s.skin, person)
        size = crop.face_size
        scale = size / 512.0 if crop.face is not None else working_scale(work.shape)
        found = np.zeros(mask.shape, np.float32)
        record = AbpnCropResult(crop, mask, [], [], [], s.blemish, found)
        window = support(mask, max(16, round(0.05 * size)))
        if window is None:
            return record
        wx0, wy0, wx1, wy1 = window
        base, skin = work[wy0:wy1, wx0:wx1], mask[wy0:wy1, wx0:wx1]
        target = base
        if s.blemish > 0 or s.tone > 0:
            layer, blemish = self.network(base, s.moles)
            found[wy0:wy1, wx0:wx1] = blemish
            amount = (s.blemish * blemish + s.tone * (1.0 - blemish)) * skin
            gain = gain_for(base, self.network.blend(base, layer)) * amount[..., None]
            target = apply_gain(base, gain)
        if s.whiten > 0:
            target = apply_gain(target, _tone_gain(target, skin, skin, size, replace(s, tone=0.0)))
        gain = gain_for(base, target) if target is not base else None
        delta = _smoothing(base, skin, scale, s) if s.smooth > 0 or s.detail > 0 else None
        paste(out, crop, window, skin, delta, gain)
        return record


__all__ = ["MODEL", "AbpnCropResult", "AbpnNetwork", "AbpnRetouch"]
