"""The ``classic`` skin segmenter: beautify's mask before the U-Net, each face's landmarks
refined by its own skin colour (:mod:`meiyan.retouch.face_skin`), at the face crop's working
resolution."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meiyan._array import Mask, check_rgb
from meiyan.face import Face
from meiyan.face.window import Window
from meiyan.retouch.crops import face_crop, full_mask, working_image
from meiyan.retouch.face_skin import FaceSkin, face_skin
from meiyan.skin.landmarks import FaceSkinSegmenter


class ClassicSkinSegmenter(FaceSkinSegmenter):
    """Per face: the face-mesh oval less the features, widened to neck and ears and narrowed
    by a colour model of that face's own skin; worked out in the face's crop (face 384 px)."""

    def in_crop(self, work: np.ndarray, crop: Window) -> FaceSkin:
        """Skin and blemish-search masks of the working image ``work`` of a face ``crop``."""
        face = crop.work_face()
        return face_skin(work, face.landmarks, crop.face_size)

    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        check_rgb(image)
        out = np.zeros(image.shape[:2], np.float32)
        for face in faces:
            crop = face_crop(face)
            skin = self.in_crop(working_image(image, crop), crop).skin
            region = out[crop.slices]
            np.maximum(region, full_mask(skin, crop), out=region)
        return out
