"""The U-Net skin segmenter at inference: the exported ONNX model run by onnxruntime.

No torch here. The photo is framed as in training (:mod:`meiyan.skin.framing`): a square window
around each face when face landmarks are given, the letterboxed whole image otherwise; the
window is resized to the model's input size, segmented, and the probability map is resized back
and pasted into place, faded towards window edges inside the photo (the maximum where windows of
several faces overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from meiyan._array import Mask, check_rgb, to_float32
from meiyan.errors import ModelError
from meiyan.models import onnx_session
from meiyan.skin.framing import Window, crop, face_window, paste_max, whole_image_window

if TYPE_CHECKING:
    from meiyan.face import Face

DEFAULT_MODEL = "skin-unet"
# Fade of a face window's inner edges, as a fraction of its side (see framing.uncrop).
WINDOW_FEATHER = 0.02
# Landmark regions cut out of the U-Net's mask, so that retouching never touches them even where
# the network is unsure (small faces). Eyebrows are left to the network: the mesh's brow polygons
# reach into skin (cutting them costs 0.006 test IoU; these three cost 0.0002).
GUARDED = ("eyes", "upper_lip", "lower_lip", "inner_mouth")


class UNetSkinSegmenter:
    """Skin probability of an RGB image from the ONNX U-Net.

    ``model`` is a registered model name or an ``.onnx`` path; ``threads`` limits onnxruntime's
    CPU threads (``None``: meiyan's thread count); ``device`` is ``cpu``, ``cuda`` or ``auto``
    (``None``: :func:`meiyan.models.default_device`).
    """

    needs_faces = True

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        self.session = onnx_session(model, threads=threads, device=device)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("meiyan.model") != "skin-unet":
            raise ModelError(f"{model} is not a meiyan skin U-Net (metadata {meta})")
        self.size = int(meta["meiyan.input_size"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_windows(self, image: np.ndarray, windows: Sequence[Window]) -> Mask:
        """Skin probability ``(H, W)`` float32 of ``image`` (uint8 or float32 RGB) over
        ``windows``; zero outside them."""
        check_rgb(image)
        windows_in = [crop(image, win, self.size, to_float32) for win in windows]
        batch = np.stack(windows_in).transpose(0, 3, 1, 2)
        probs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0][:, 0]
        out = np.zeros(image.shape[:2], dtype=np.float32)
        for prob, win in zip(probs, windows, strict=True):
            paste_max(out, prob, win, WINDOW_FEATHER)
        # Sigmoid outputs, resized bilinearly, faded and maxed, stay in [0, 1]: no clip needed.
        return out

    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        """Skin probability ``(H, W)`` float32 in [0, 1] of ``image`` (uint8 or float32 RGB).

        Each face is segmented in its own window (:func:`meiyan.skin.framing.face_window`),
        limited to the person and with eyes, lips and inner mouth cut out; without faces the
        whole letterboxed image is segmented.
        """
        from meiyan.face.person import default_person
        from meiyan.face.window import upsample_window
        from meiyan.skin.landmarks import remove_features

        check_rgb(image)
        if not faces:
            return self.predict_windows(image, [whole_image_window(*image.shape[:2])])
        windows = [face_window(f.landmarks, f.pose.yaw) for f in faces]
        mask = self.predict_windows(image, windows)
        # A face window also holds background: skin-coloured walls and props are not skin. The
        # person mask is enlarged over the windows only (zero elsewhere).
        h, w = image.shape[:2]
        x0, y0 = max(0, min(v.x0 for v in windows)), max(0, min(v.y0 for v in windows))
        x1, y1 = min(w, max(v.x1 for v in windows)), min(h, max(v.y1 for v in windows))
        if x1 > x0 and y1 > y0:
            small = default_person().small(image)
            scale = (w / small.shape[1], h / small.shape[0])
            for b0 in range(y0, y1, 512):  # bands: no full-size copy of the person mask
                b1 = min(y1, b0 + 512)
                mask[b0:b1, x0:x1] *= upsample_window(small, scale, (x0, b0), (x1 - x0, b1 - b0))
        for face in faces:
            remove_features(mask, face, 0.0, GUARDED)
        return mask
