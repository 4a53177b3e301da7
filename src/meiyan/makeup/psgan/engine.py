"""The ``psgan`` makeup engine: an exported PSGAN generator run by onnxruntime (no torch).

PSGAN (W. Jiang et al., "PSGAN: Pose and Expression Robust Spatial-Aware GAN for Customizable
Makeup Transfer", CVPR 2020) on every face of a photo, in the classical engine's window
(:class:`meiyan.makeup.faces.FaceCrop`):

1. **Crops.** The face's working window is rotated and scaled so that its eyes (the 68-point
   eye centres) sit level at fixed places of a 256x256 crop, as the faces of PSGAN's training
   set; the reference's picture likewise.
2. **Pose correction.** The reference crop is warped onto the source crop along the landmark
   triangulation (:mod:`meiyan.makeup.warp`), with its own region masks, so that the reference
   enters in the source's geometry and the attention matches like with like; where the warp
   folds, the plainly aligned reference stays.
3. **Masks and features.** PSGAN's three regions, from :func:`meiyan.makeup.regions.makeup_masks`
   on the crop: lips (inner mouth left out), skin (face less eyes, brows, lips and mouth) and
   eye shadow, the skin inside the box of each eye's 68-point landmarks grown by 16 pixels, as
   the official preprocessing cuts it; the landmarks on the 68-point scheme
   (:mod:`meiyan.makeup.psgan.landmarks68`). The network computes PSGAN's offset features.
4. **Run and paste.** The change is the network's output less its own no-makeup output
   (``image - bare``: the makeup without the generator's reconstruction error), each region's
   gamma and beta scaled by its shade. It is mapped back to the window, kept to the chosen
   regions' soft masks, resized and cut at the face oval (off teeth and eyeballs) as the
   classical engine does, and added to the photo: nothing outside the face changes, and all
   shades 0 return the photo bit for bit.

PSGAN attends over lips, skin and eye shadow. Brows and blush are served by the classical
transfer (:func:`meiyan.makeup.transfer.transfer_face`) on top of the network's result.
References may differ per region: the network runs once per distinct reference.

No trained model ships yet, so the engine runs the ONNX file given as ``weights``: one written
by ``meiyan convert psgan G.pth`` from the official weights, or by ``meiyan export psgan`` from
a ``meiyan train psgan`` checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb, from_float32, to_float32
from meiyan.engines import EngineError
from meiyan.errors import ModelError
from meiyan.face import Face
from meiyan.makeup.colour import lab_to_rgb, rgb_to_lab
from meiyan.makeup.faces import FaceCrop
from meiyan.makeup.looks import Look
from meiyan.makeup.psgan.landmarks68 import LEFT_EYE, RIGHT_EYE, to_ibug68
from meiyan.makeup.regions import check_regions, makeup_masks, mask_sets
from meiyan.makeup.transfer import Reference, transfer_face
from meiyan.makeup.warp import face_warp
from meiyan.models import onnx_session

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

NO_MODEL = (
    "makeup engine 'psgan' needs weights (--weights MODEL.onnx; weights=): no PSGAN model "
    "ships yet; make one with `meiyan convert psgan G.pth -o MODEL.onnx` from the official "
    "weights, or `meiyan train psgan` then `meiyan export psgan`"
)
SIZE = 256
NETWORK_REGIONS: tuple[str, ...] = ("lips", "skin", "eyes")
"""The user regions the network serves, in its mask and shade order."""
CLASSIC_REGIONS: tuple[str, ...] = ("brows", "blush")
"""The user regions served by the classical transfer on top."""
# Crop geometry: eye centres this far apart (a share of the side) and this far down, about
# where the official dlib crop (face box grown 0.7 up, 0.24 down, squared) puts them.
_EYE_DISTANCE = 0.26
_EYE_HEIGHT = 0.46
_EYE_MARGIN = 16  # pixels of the 256 crop around each eye's landmarks (official eye_margin)


def _active(
    shades: Mapping[str, float], refs: Mapping[str, Reference], regions: Sequence[str]
) -> dict[str, float]:
    """The shade of each of ``regions`` that has a reference and a shade above 0."""
    return {r: float(shades[r]) for r in regions if r in refs and float(shades.get(r, 0.0)) > 0}


def _alignment(points68: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` similarity putting the eye centres of ``points68`` level in the crop."""
    right = points68[RIGHT_EYE].mean(axis=0)
    left = points68[LEFT_EYE].mean(axis=0)
    axis = left - right
    dist = max(float(np.hypot(*axis)), 1.0)
    c, s = axis / dist * (SIZE * _EYE_DISTANCE / dist)
    rot = np.array([[c, s], [-s, c]])
    centre = (right + left) / 2
    offset = np.array([SIZE / 2, SIZE * _EYE_HEIGHT]) - rot @ centre
    return np.column_stack([rot, offset])


def _chw(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), np.float32)


def _transform(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]


def region_masks(points478: np.ndarray, hard: Mapping[str, Mask] | None = None) -> np.ndarray:
    """PSGAN's ``(3, 256, 256)`` float32 binary masks (lips, skin, eyes) of crop landmarks;
    ``hard``: the crop's hard makeup masks when already made
    (:func:`~meiyan.makeup.regions.mask_sets`)."""
    if hard is None:
        hard = makeup_masks(points478, (SIZE, SIZE), soft=False)
    lips = hard["lips"] > 0.5
    skin = hard["skin"] > 0.5
    boxes = np.zeros((SIZE, SIZE), bool)
    pts68 = to_ibug68(points478)
    for eye in (RIGHT_EYE, LEFT_EYE):
        x0, y0 = np.floor(pts68[eye].min(axis=0)).astype(int) - _EYE_MARGIN
        x1, y1 = np.ceil(pts68[eye].max(axis=0)).astype(int) + _EYE_MARGIN + 1
        boxes[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return np.stack([lips, skin & ~boxes, skin & boxes]).astype(np.float32)


@dataclass(frozen=True)
class AlignedFace:
    """A face in the 256x256 crop: RGB, its 478 and 68 landmarks, PSGAN's masks, and the
    soft and hard makeup masks they come from (``parts``, made once per face: painting a look
    on the crop reuses them)."""

    rgb: np.ndarray
    points: np.ndarray
    points68: np.ndarray
    masks: np.ndarray
    parts: tuple[dict[str, Mask], dict[str, Mask]]

    @classmethod
    def at(cls, rgb: np.ndarray, points: np.ndarray) -> AlignedFace:
        """The face of an aligned float32 crop ``rgb`` with its 478 landmarks ``points``."""
        pts = np.asarray(points, np.float64)
        parts = mask_sets(pts, (SIZE, SIZE))
        return cls(rgb=rgb, points=pts, points68=to_ibug68(pts),
                   masks=region_masks(pts, parts[1]), parts=parts)

    @classmethod
    def of(cls, image: np.ndarray, landmarks: np.ndarray) -> AlignedFace:
        """The aligned crop of the face at ``landmarks`` (image pixels) in an RGB image.

        The part of the image the crop covers is first shrunk by area averaging to about the
        crop's scale, so a large face is not aliased.
        """
        lm = np.asarray(landmarks, np.float64)
        m = _alignment(to_ibug68(lm))
        h, w = image.shape[:2]
        corners = _transform(
            [[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]], cv2.invertAffineTransform(m)
        )
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, (w - 1, h - 1))
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, (x0 + 1, y0 + 1), (w, h))
        part = to_float32(image[y0:y1, x0:x1])
        shrink = min(1.0, 1.5 * float(np.hypot(*m[0, :2])))
        if shrink < 1.0:
            size = (max(round((x1 - x0) * shrink), 1), max(round((y1 - y0) * shrink), 1))
            part = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
        fx, fy = part.shape[1] / (x1 - x0), part.shape[0] / (y1 - y0)
        # Part pixel (u, v) is image pixel ((u + 0.5) / fx - 0.5 + x0, ...): compose with m.
        to_image = np.array([[1 / fx, 0, 0.5 / fx - 0.5 + x0], [0, 1 / fy, 0.5 / fy - 0.5 + y0]])
        m_part = np.column_stack([m[:, :2] @ to_image[:, :2], m[:, :2] @ to_image[:, 2] + m[:, 2]])
        rgb = cv2.warpAffine(
            part, m_part, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return cls.at(rgb, _transform(lm, m))


def warp_reference(reference: AlignedFace, source: AlignedFace) -> tuple[np.ndarray, np.ndarray]:
    """The reference crop ``(256, 256, 3)`` and its masks ``(3, 256, 256)``, warped onto the
    source crop's geometry; where the warp folds, the plainly aligned reference stays."""
    warp = face_warp(reference.points, source.points, (SIZE, SIZE), (SIZE, SIZE))
    stack = warp.apply(np.dstack([reference.rgb, reference.masks.transpose(1, 2, 0)]))
    valid = warp.valid[..., None]
    rgb = valid * stack[..., :3] + (1.0 - valid) * reference.rgb
    masks = ((stack[..., 3:] * valid) > 0.5).astype(np.float32).transpose(2, 0, 1)
    return rgb.astype(np.float32), masks


def network_inputs(
    source: AlignedFace, ref_rgb: np.ndarray, ref_masks: np.ndarray
) -> dict[str, np.ndarray]:
    """The ONNX inputs of one face but ``shade``, without the batch axis: the reference
    (warped by :func:`warp_reference`) takes the source's landmarks."""
    points = source.points68.astype(np.float32)
    return {
        "source": _chw(source.rgb),
        "reference": _chw(ref_rgb),
        "source_masks": source.masks,
        "reference_masks": ref_masks,
        "source_landmarks": points,
        "reference_landmarks": points,
    }


class PsganEngine:
    """Makeup transfer by an exported PSGAN ONNX model (:mod:`meiyan.makeup.psgan.convert`).

    ``model``: an ``.onnx`` path (or a registered model name) run when a call gives no
    ``weights``; ``None``, the makeup slot's instance: every call must give ``weights``, since
    no model ships yet. ``threads``: onnxruntime's CPU threads (``None``: meiyan's default).
    Called as the makeup slot's engines are: ``(image, faces, shades, refs=...)`` with an RGB
    image (uint8, or float in [0, 1]), its faces, the shade per region in [0, 1] and the
    reference per region, and ``weights=`` an ONNX file; returns a new image of the input's
    shape and dtype. It paints no virtual looks (``looks`` is false).
    """

    name = "psgan"
    looks = False

    def __init__(self, model: str | Path | None = None, threads: int | None = None) -> None:
        self.threads = threads
        self.session = None if model is None else self.load(model)

    def load(self, model: str | Path) -> InferenceSession:
        """The onnxruntime session of ``model`` (cached), checked to be a meiyan PSGAN."""
        session = onnx_session(model, threads=self.threads)
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("meiyan.model") != "psgan":
            raise ModelError(f"{model} is not a meiyan PSGAN model (metadata {meta})")
        return session

    @staticmethod
    def network_change(
        session: InferenceSession, source: AlignedFace, ref: Reference,
        shades: Mapping[str, float],
    ) -> np.ndarray:
        """The network's makeup change ``(256, 256, 3)`` on the source crop for ``shades``."""
        aligned = AlignedFace.of(ref.image, ref.face.landmarks)
        inputs = network_inputs(source, *warp_reference(aligned, source))
        feed = {k: v[None] for k, v in inputs.items()}
        feed["shade"] = np.array([[shades.get(r, 0.0) for r in NETWORK_REGIONS]], np.float32)
        image, bare = session.run(["image", "bare"], feed)
        return (image[0] - bare[0]).transpose(1, 2, 0)

    def face_change(
        self,
        session: InferenceSession,
        image: np.ndarray,
        face: Face,
        crop: FaceCrop,
        shades: Mapping[str, float],
        refs: Mapping[str, Reference],
    ) -> np.ndarray:
        """The RGB change ``(h, w, 3)`` of one face in its working window ``crop``."""
        h, w = crop.rgb.shape[:2]
        change = np.zeros((h, w, 3), np.float32)
        network = _active(shades, refs, NETWORK_REGIONS)
        if network:
            source = AlignedFace.of(image, face.landmarks)
            by_ref: dict[int, dict[str, float]] = {}
            for region, shade in network.items():
                by_ref.setdefault(id(refs[region]), {})[region] = shade
            made = np.zeros((SIZE, SIZE, 3), np.float32)
            for part in by_ref.values():
                made += self.network_change(session, source, refs[next(iter(part))], part)
            back = cv2.warpAffine(
                made,
                _alignment(to_ibug68(crop.points)),  # working pixels to the same crop
                (w, h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            soft = makeup_masks(crop.points, (h, w), soft=True)
            keep = np.maximum.reduce([soft[r] for r in network])
            change = back * keep[..., None]
        classic = _active(shades, refs, CLASSIC_REGIONS)
        if classic:
            lab = rgb_to_lab(np.clip(crop.rgb + change, 0.0, 1.0))
            made_lab = transfer_face(lab, crop.points, refs, classic)
            change = change + lab_to_rgb(made_lab) - lab_to_rgb(lab)
        return change

    def __call__(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        shades: Mapping[str, float],
        refs: Mapping[str, Reference] | None = None,
        look: Look | None = None,
        weights: str | Path | None = None,
    ) -> np.ndarray:
        if look is not None or refs is None:
            raise EngineError("makeup engine 'psgan' transfers from a reference; give reference=")
        if weights is None and self.session is None:
            raise EngineError(NO_MODEL)
        session = self.session if weights is None else self.load(weights)
        check_rgb(image)
        check_regions(shades)
        check_regions(refs)
        out = image.copy()
        if not _active(shades, refs, NETWORK_REGIONS + CLASSIC_REGIONS):
            return out
        for face in faces:
            crop = FaceCrop.of(image, face)
            change = crop.to_window(self.face_change(session, image, face, crop, shades, refs))
            win = crop.window.slices
            if image.dtype == np.uint8:
                out[win] = from_float32(to_float32(out[win]) + change, np.uint8)
            else:
                out[win] = np.clip(out[win] + change, 0.0, 1.0).astype(image.dtype)
        return out
