"""Finding the faces to make up and the face to copy makeup from; the window makeup works in."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from meiyan._array import Float32Image, to_float32
from meiyan.errors import NoFaceError
from meiyan.face import Face, analyze, region_mask, region_polygons
from meiyan.face.regions import FaceFrame
from meiyan.face.window import Window
from meiyan.makeup.roi import Box, support

# Window around a face: its landmark box grown by this fraction of its size on every side,
# enough for the softest mask edge (blush) and the forehead above the mesh.
_WINDOW_MARGIN = 0.15
# Makeup is worked out with the eyes at most this many pixels apart (a face of about 350 pixels):
# every mask edge and colour layout is smooth at that scale, and a 24-megapixel portrait costs
# no more than a small one. The change is then resized to the photo's own pixels.
WORK_EYE_DISTANCE = 128.0
# A resized change is cut at the face oval, without the mouth's and eyes' openings; the cut's
# anti-aliased edge lies within this many pixels of the oval's outline (region_mask's own pad).
_CUT_OUT = ("inner_mouth", "eyes")
_CUT_PAD = 2


def find_faces(image: np.ndarray, role: str = "image") -> list[Face]:
    """Every face in ``image`` (RGB uint8 or float32), or :class:`NoFaceError` naming ``role``."""
    faces = analyze(image)
    if not faces:
        raise NoFaceError(f"no face found in the {role}")
    return faces


def main_face(image: np.ndarray, role: str = "reference") -> Face:
    """The largest face in ``image``: the one a reference's makeup is taken from."""
    return max(find_faces(image, role), key=lambda f: f.size)


@dataclass(frozen=True)
class FaceCrop:
    """The window around one face at working resolution.

    ``rgb``: float32 RGB of the window, resized by ``scale`` (at most 1); ``points``: the
    ``(478, 2)`` landmarks in its pixels.
    """

    window: Window
    scale: float
    rgb: Float32Image
    points: np.ndarray
    landmarks: np.ndarray  # in the window's own pixels

    @classmethod
    def of(cls, image: np.ndarray, face: Face) -> FaceCrop:
        """The crop of ``face`` in an RGB ``image`` (uint8 or float in [0, 1]) as float32,
        shrunk when the face is large."""
        win = Window.around(face, (_WINDOW_MARGIN,) * 4)
        landmarks = win.local(face.landmarks)
        scale = min(1.0, WORK_EYE_DISTANCE / FaceFrame.of(landmarks).scale)
        if scale < 1.0:
            h, w = win.shape
            size = (max(round(w * scale), 1), max(round(h * scale), 1))
            win = win.at(size)
            # Pixel centres sit at integer coordinates in both grids.
            points = (landmarks + 0.5) * (size[0] / w, size[1] / h) - 0.5
        else:
            points = landmarks
        return cls(
            window=win,
            scale=scale,
            rgb=win.crop(image, to_float32),
            points=points,
            landmarks=landmarks,
        )

    def to_window(self, change: np.ndarray) -> np.ndarray:
        """A working-resolution change ``(h, w, 3)`` at the window's own resolution.

        Resized changes are smooth; they are cut at the face oval and kept off the teeth and
        the eyeballs, which the resizing would otherwise blur them onto.
        """
        if self.scale >= 1.0:
            return change
        part, box = self.change_in_window(change)
        full = np.zeros((*self.window.shape, 3), np.float32)
        full[box] = part
        return full

    def change_in_window(self, change: np.ndarray) -> tuple[np.ndarray, Box]:
        """:meth:`to_window`'s change over the box of the window outside which it is 0 (the
        face oval's, when resized), and that box: a large photo is only touched there."""
        if self.scale >= 1.0:
            return change, (slice(0, change.shape[0]), slice(0, change.shape[1]))
        h, w = self.window.shape
        full = cv2.resize(change, (w, h), interpolation=cv2.INTER_LINEAR)
        # The cut is drawn in the face oval's box only (the whole window's, bit for bit).
        oval = np.concatenate(region_polygons(self.landmarks, "face_oval"))
        x0, y0 = np.maximum(np.floor(oval.min(axis=0)).astype(int) - _CUT_PAD, 0)
        x1, y1 = np.minimum(np.ceil(oval.max(axis=0)).astype(int) + _CUT_PAD + 1, (w, h))
        keep = region_mask(
            self.landmarks - (x0, y0), "face_oval", (y1 - y0, x1 - x0), exclude=_CUT_OUT
        )
        cut = support(keep)
        if cut is None:
            return full[:0, :0], (slice(0, 0), slice(0, 0))
        box = slice(cut[0].start + y0, cut[0].stop + y0), slice(cut[1].start + x0, cut[1].stop + x0)
        # All three channels at once: NumPy is slow at broadcasting over 3 channels.
        return cv2.multiply(full[box], cv2.merge([keep[cut]] * 3)), box
