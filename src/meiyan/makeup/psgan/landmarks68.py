"""MediaPipe's 478-point face mesh on the 68-point iBUG 300-W scheme (dlib's predictor).

PSGAN (W. Jiang et al., CVPR 2020) describes positions by their offsets to dlib's 68 landmarks
(C. Sagonas et al., "300 Faces in-the-Wild Challenge", ICCV Workshops 2013). The table below
picks, for each of the 68 points, the mesh vertex at the same anatomical place, read off
MediaPipe's canonical face model and its named contours (``face_mesh_connections``): the jaw
takes every other-or-so vertex of the face oval from the person's right temple-ear junction
(127, at the eye corners' height like iBUG point 0) over the chin (152) to the left (356),
chosen to space the 17 points evenly along the arc and symmetrically (vertex ``i`` on the
right, its mirror on the left); brows take their upper edge from the outer end inwards on the
right and from the inner end outwards on the left; the nose its bridge (168, 197, 5, 4, down
to the tip) and the lower edge of the nostrils through the subnasale (2); eyes their corners
and two vertices on each lid at about a third and two thirds of its length, clockwise in the
image from the outer corner of the right eye and from the inner corner of the left; the mouth
its outer contour clockwise from the right corner (with 37 and 267 on the peaks of the
Cupid's bow) and its inner contour likewise. "Right" is the person's right, the image's left.
"""

from __future__ import annotations

import numpy as np

MEDIAPIPE_TO_IBUG68: tuple[int, ...] = (
    # jaw 0-16, the person's right (image left) to their left
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21 (outer to inner), left brow 22-26 (inner to outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30 (top to tip), lower nose 31-35 (right to left)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41: outer corner, upper lid, inner corner, lower lid
    33, 160, 158, 133, 153, 144,
    # left eye 42-47: inner corner, upper lid, outer corner, lower lid
    362, 385, 387, 263, 373, 380,
    # outer lips 48-59: right corner, upper lip, left corner, lower lip
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67: right corner, upper, left corner, lower
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip
"""For each iBUG point ``k``, the MediaPipe face-mesh vertex at its place."""

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


def to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """``(478, 2)`` face-mesh points (or ``(..., 478, 2)``) -> ``(68, 2)`` in iBUG order."""
    lm = np.asarray(landmarks)
    if lm.shape[-2:] != (478, 2):
        raise ValueError(f"landmarks must have shape (478, 2), got {lm.shape}")
    return lm[..., list(MEDIAPIPE_TO_IBUG68), :]
