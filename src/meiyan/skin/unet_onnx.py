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
    CPU threads (``None``: its default); with ``find_faces`` a call without ``faces`` runs
    :func:`meiyan.face.detect_faces` to frame each face.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        threads: int | None = None,
        find_faces: bool = True,
    ) -> None:
        self.find_faces = find_faces
        self.session = onnx_session(model, threads)
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
        return np.clip(out, 0.0, 1.0, out=out)

    def _faces(self, image: np.ndarray, faces: Sequence[Face] | None) -> Sequence[Face]:
        check_rgb(image)
        if faces is None and self.find_faces:
            from meiyan.face import detect_faces

            return detect_faces(image)
        return faces or []

    def _face_windows(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        from meiyan.face.person import person_mask
        from meiyan.skin.landmarks import remove_features

        mask = self.predict_windows(image, [face_window(f.landmarks, f.pose.yaw) for f in faces])
        # A face window also holds background: skin-coloured walls and props are not skin.
        mask *= person_mask(image)
        for face in faces:
            remove_features(mask, face, 0.0, GUARDED)
        return mask

    def __call__(self, image: np.ndarray, faces: Sequence[Face] | None = None) -> Mask:
        """Skin probability ``(H, W)`` float32 in [0, 1] of ``image`` (uint8 or float32 RGB).

        Each face (given, or found when ``find_faces`` is set) is segmented in its own window
        (:func:`meiyan.skin.framing.face_window`); without faces the whole image is segmented.
        """
        faces = self._faces(image, faces)
        if faces:
            return self._face_windows(image, faces)
        return self.predict_windows(image, [whole_image_window(*image.shape[:2])])

    def segment(self, image: np.ndarray, faces: Sequence[Face] | None = None) -> Mask | None:
        """Like calling the segmenter, but ``None`` when there is no face (for ``auto``)."""
        faces = self._faces(image, faces)
        return self._face_windows(image, faces) if faces else None
