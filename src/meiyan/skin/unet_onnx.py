"""The U-Net skin segmenter at inference: the exported ONNX model run by onnxruntime.

No torch here. The photo is framed as in training (:mod:`meiyan.skin.framing`): a square window
around each face when face landmarks are given, the letterboxed whole image otherwise; the
window is resized to the model's input size, segmented, and the probability map is resized back
and pasted into place, faded towards window edges inside the photo (the maximum where windows of
several faces overlap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb, from_float32, to_float32
from meiyan.errors import ModelError
from meiyan.face.window import shrink_area, upsample_window
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
WORK_PIXELS = 1_000_000
"""Photos over 1.25**2 times this (a 1080p frame: 2.5 MP) get their mask made at this size and
enlarged: the network sees 192-pixel windows and the person and body masks are coarser still
(labelled IoU the same as at 2.1 MP on FASSEG enlarged 4 and 8 times and LFW 6 and 10 times,
``bench/skin_iou.py --enlarge``)."""
FAINT = 1.0 / 255.0
"""Skin probabilities under this (one 8-bit level) are 0."""


def _sources(
    windows: Sequence[Window], shape: tuple[int, ...], full: tuple[int, ...]
) -> list[Window]:
    """``windows`` of a copy of ``shape`` ``(H, W)`` as the same squares of the photo of
    ``full`` ``(H, W, ...)`` (what the network is shown: cut from the photo, not the copy)."""
    sx, sy = shape[1] / full[1], shape[0] / full[0]
    return [Window.square((v.x0 + v.x1) / (2 * sx), (v.y0 + v.y1) / (2 * sy),
                          max(1, round(v.size[0] / math.sqrt(sx * sy)))) for v in windows]


def _sparse(mask: Mask) -> Mask:
    """``mask`` (changed in place) with what is under :data:`FAINT` made 0: sigmoid outputs
    are never 0, and jobs should work where there is skin, not over every face window."""
    mask[mask < FAINT] = 0.0
    return mask


class UNetSkinSegmenter:
    """Skin probability of an RGB image from the ONNX U-Net.

    ``model`` is a registered model name or an ``.onnx`` path; ``threads`` limits onnxruntime's
    CPU threads (``None``: meiyan's thread count); ``device`` is ``cpu``, ``cuda`` or ``auto``
    (``None``: :func:`meiyan.models.default_device`); ``guarded``: the face regions cut out of
    the mask (``()``: the network's own output, features included as it learned them);
    ``body``: find skin beyond the face windows too (arms, hands, shoulders).
    """

    needs_faces = True
    uses_person = True
    """The network's mask is limited to MediaPipe's person mask (:mod:`meiyan.face.person`)."""

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        threads: int | None = None,
        device: str | None = None,
        guarded: tuple[str, ...] = GUARDED,
        body: bool = True,
    ) -> None:
        self.guarded, self.body = guarded, body
        self.session = onnx_session(model, threads=threads, device=device)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("meiyan.model") != "skin-unet":
            raise ModelError(f"{model} is not a meiyan skin U-Net (metadata {meta})")
        self.size = int(meta["meiyan.input_size"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_windows(
        self,
        image: np.ndarray,
        windows: Sequence[Window],
        placed: Sequence[Window] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> Mask:
        """Skin probability ``(H, W)`` float32 of ``image`` (uint8 or float32 RGB) over
        ``windows``; zero outside them. ``placed``, ``shape``: the windows' places in a mask
        of another size ``(H, W)`` (a reduced copy's), when the mask is wanted there."""
        check_rgb(image)
        windows_in = [crop(image, win, self.size, to_float32) for win in windows]
        batch = np.stack(windows_in).transpose(0, 3, 1, 2)
        probs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0][:, 0]
        out = np.zeros(shape or image.shape[:2], dtype=np.float32)
        for prob, win in zip(probs, placed or windows, strict=True):
            paste_max(out, prob, win, WINDOW_FEATHER)
        # Sigmoid outputs, resized bilinearly, faded and maxed, stay in [0, 1]: no clip needed.
        return out

    def __call__(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        person: Mask | None = None,
        person_rgb: np.ndarray | None = None,
    ) -> Mask:
        """Skin probability ``(H, W)`` float32 in [0, 1] of ``image`` (uint8 or float32 RGB).

        Each face is segmented in its own window (:func:`meiyan.skin.framing.face_window`),
        limited to the person (``person`` at any resolution, or worked out here) and with the
        ``guarded`` features cut out; beyond the windows (arms, hands, shoulders) a colour model
        of the skin the network found takes over (:func:`meiyan.skin.body.body_skin`) when
        ``body`` is on. Without faces the whole letterboxed image is segmented. A photo over
        :data:`WORK_PIXELS` gets its mask made at a reduced size and enlarged once: the
        network sees each window at 192 pixels and the person and body masks are coarser
        still, so full resolution would add nothing but time; the windows are still cut from
        the photo itself (a sampled read of each), so the photo is never reduced whole.
        ``person_rgb``: the uint8 copy of ``image`` that ``person`` was worked out on
        (:func:`meiyan.face.person.person_and_copy`), reused by the body skin step instead of
        reducing the photo again.
        """
        mask = self.coarse(image, faces, person, person_rgb)
        h, w = image.shape[:2]
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return mask

    def coarse(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        person: Mask | None = None,
        person_rgb: np.ndarray | None = None,
    ) -> Mask:
        """The mask of :meth:`__call__` before it is enlarged: at the reduced size of a photo
        over :data:`WORK_PIXELS` (at the photo's own size otherwise), for a job that works at
        a reduced size anyway."""
        check_rgb(image)
        h, w = image.shape[:2]
        f = math.sqrt(h * w / WORK_PIXELS)
        shape = (h, w)
        if f > 1.25:  # the mask is made at this size, from windows cut from the photo itself
            shape = (max(1, round(h / f)), max(1, round(w / f)))
            sx, sy = shape[1] / w, shape[0] / h
            faces = [face.rescaled(sx, sy, shape) for face in faces]
        if not faces:
            windows = [whole_image_window(*shape)]
            mask = self.predict_windows(image, _sources(windows, shape, (h, w)), windows, shape)
        else:
            if person is None:
                from meiyan.face.person import person_and_copy

                person, person_rgb = person_and_copy(image)
            windows = [face_window(f.landmarks, f.pose.yaw) for f in faces]
            mask, person = self._faces_mask(image, faces, windows, person=person, shape=shape)
            if self.body:
                self._add_body(image, mask, person, windows, person_rgb)
        return _sparse(mask)

    def crop_mask(self, image: np.ndarray, face: Face, person: Mask | None = None) -> Mask:
        """The skin of one face's crop, as beautify wants it: the face window only (no body
        skin), limited to the person; the features are left in, for the caller to cut out
        with its own margins. ``person``: the person probability over ``image`` at any
        resolution (e.g. cut from a mask of the whole photo); worked out here when ``None``."""
        check_rgb(image)
        window = face_window(face.landmarks, face.pose.yaw)
        return _sparse(self._faces_mask(image, [face], [window], guarded=(), person=person)[0])

    def _faces_mask(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        windows: Sequence[Window],
        guarded: tuple[str, ...] | None = None,
        person: Mask | None = None,
        shape: tuple[int, int] | None = None,
    ) -> tuple[Mask, Mask]:
        """The network's mask over the face windows, limited to the person (``person``, or
        worked out here), the ``guarded`` features (``None``: the segmenter's) cut out; and the
        person mask at its small size. ``shape``: the mask's ``(H, W)`` when smaller than the
        image's, ``faces`` and ``windows`` given at that size."""
        from meiyan.face.person import default_person
        from meiyan.skin.landmarks import remove_features

        h, w = shape or image.shape[:2]
        sources = windows if (h, w) == image.shape[:2] else _sources(windows, (h, w), image.shape)
        mask = self.predict_windows(image, sources, windows, (h, w))
        # A face window also holds background: skin-coloured walls and props are not skin. The
        # person mask is enlarged over the windows only (zero elsewhere).
        small = default_person().small(image) if person is None else person
        scale = (w / small.shape[1], h / small.shape[0])
        x0, y0 = max(0, min(v.x0 for v in windows)), max(0, min(v.y0 for v in windows))
        x1, y1 = min(w, max(v.x1 for v in windows)), min(h, max(v.y1 for v in windows))
        if x1 > x0 and y1 > y0:
            for b0 in range(y0, y1, 512):  # bands: no full-size copy of the person mask
                b1 = min(y1, b0 + 512)
                mask[b0:b1, x0:x1] *= upsample_window(small, scale, (x0, b0), (x1 - x0, b1 - b0))
        guarded = self.guarded if guarded is None else guarded
        if guarded:
            for face in faces:
                remove_features(mask, face, 0.0, guarded)
        return mask, small

    def _add_body(
        self,
        image: np.ndarray,
        mask: Mask,
        person: Mask,
        windows: Sequence[Window],
        person_rgb: np.ndarray | None,
    ) -> None:
        """Skin beyond the face windows into ``mask`` (in place), worked out at the person
        mask's size from the skin the network found. ``person_rgb`` (the person segmenter's
        copy of ``image``, made by the same :func:`shrink_area`) stands in for the reduced
        photo."""
        from meiyan.skin.body import body_skin

        h, w = mask.shape
        sh, sw = person.shape
        fx, fy = w / sw, h / sh
        if person_rgb is not None and person_rgb.shape[:2] == person.shape:
            rgb = person_rgb
        else:
            rgb = shrink_area(image, (sw, sh))
            if rgb.dtype != np.uint8:
                rgb = from_float32(rgb, np.uint8)
        sure = shrink_area(mask, (sw, sh)) >= 0.9
        covered = np.zeros((sh, sw), np.float32)
        for win in windows:
            small = Window(math.floor(win.x0 / fx), math.floor(win.y0 / fy),
                           math.ceil(win.x1 / fx), math.ceil(win.y1 / fy))
            small.paste_max(covered, np.ones(small.shape, np.float32),
                            WINDOW_FEATHER * small.size[0])
        body = body_skin(rgb, person, sure, covered)
        rows = np.nonzero(body.max(axis=1) > FAINT)[0]
        if rows.size == 0:
            return
        cols = np.nonzero(body.max(axis=0) > FAINT)[0]
        bx0, by0 = max(0, math.floor((cols[0] - 1) * fx)), max(0, math.floor((rows[0] - 1) * fy))
        bx1 = min(w, math.ceil((cols[-1] + 2) * fx))
        by1 = min(h, math.ceil((rows[-1] + 2) * fy))
        for b0 in range(by0, by1, 512):
            b1 = min(by1, b0 + 512)
            region = mask[b0:b1, bx0:bx1]
            np.maximum(region, upsample_window(body, (fx, fy), (bx0, b0), (bx1 - bx0, b1 - b0)),
                       out=region)
