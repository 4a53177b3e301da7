"""Head pose (yaw, pitch, roll) from the 3-D face-mesh landmarks.

The face mesh gives every landmark a depth on the scale of its image coordinates (weak
perspective), so the head's axes can be read off the mesh itself without a generic 3-D model:
the x axis joins the centroids of the right and the left eye-and-eyebrow landmarks (the face is
bilaterally symmetric, so this axis is horizontal in the head frame), the y axis runs down the
face oval from its top (forehead, landmark 10) to its bottom (chin, landmark 152), made orthogonal
to x, and z = x × y points back into the head. The angles are those of the rotation taking the
camera axes to these head axes. (An eyes-to-mouth y axis reads about 10 degrees too high, as the
mouth lies in front of the eyes; the forehead-to-chin line is upright in faces looking ahead:
mean pitch 0.3 ± 4.7 degrees over the 0 to ±30 degree faces of the FASSEG training split.)

Y. Kartynnik, A. Ablavatski, I. Grishchenko and M. Grundmann, "Real-time Facial Surface Geometry
from Monocular Video on Mobile GPUs", CVPR Workshops 2019 (the mesh and its depth).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from meiyan.face.record import Pose

_FOREHEAD_TOP, _CHIN_BOTTOM = 10, 152


@cache
def _groups() -> tuple[list[int], list[int]]:
    """Landmark indices of the left eye and eyebrow, and of the right eye and eyebrow."""
    from meiyan.face._mediapipe import solution

    fmc = solution("face_mesh_connections")

    def verts(*sets: frozenset[tuple[int, int]]) -> list[int]:
        return sorted({i for s in sets for e in s for i in e})

    return (
        verts(fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_LEFT_EYEBROW),
        verts(fmc.FACEMESH_RIGHT_EYE, fmc.FACEMESH_RIGHT_EYEBROW),
    )


def head_axes(points3d: np.ndarray) -> np.ndarray:
    """``3x3`` rotation whose columns are the head's x (to its left), y (down) and z (back) axes.

    ``points3d``: ``(478, 3)`` landmarks ``(x, y, depth)`` in pixels, depth growing away from the
    camera. The identity is a face looking straight into the camera, upright.
    """
    left, right = _groups()
    p = np.asarray(points3d, np.float64)
    x = p[left].mean(axis=0) - p[right].mean(axis=0)
    x /= np.linalg.norm(x)
    down = p[_CHIN_BOTTOM] - p[_FOREHEAD_TOP]
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    return np.column_stack([x, y, np.cross(x, y)])


def head_pose(points3d: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees (sign conventions in :class:`~meiyan.face.record.Pose`)."""
    r = head_axes(points3d)
    x, z = r[:, 0], r[:, 2]
    yaw = np.degrees(np.arctan2(z[0], z[2]))
    pitch = np.degrees(np.arctan2(z[1], np.hypot(z[0], z[2])))
    roll = np.degrees(np.arctan2(x[1], x[0]))
    return Pose(yaw=float(yaw), pitch=float(pitch), roll=float(roll))
