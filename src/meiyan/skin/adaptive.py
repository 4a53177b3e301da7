"""The ``adaptive`` skin segmenter: a skin colour model fitted to each image from its faces.

Per face, in a window around it (face, ears, neck, shoulders) resized so that the face is about
``face_px`` pixels across:

1. **Seeds from the landmarks.** Certain skin: the lower face (cheeks, nose, chin, jaw) and the
   parts of the face oval whose Lab colour lies within a robust Gaussian of the lower face's
   colour (luminance included, so hair fringes over the forehead are not seeds), away from the
   oval's edge, eyes, eyebrows and lips. Certain non-skin: what the person segmentation calls
   background, and dark-or-odd pixels on the head above the face oval (hair). Probably skin: the
   rest of the person that passes the YCrCb colour rule and is not much darker than the face
   (brown hair has skin chroma; luminance tells it apart), except below the mouth in line with
   the jaw (the neck, often in shadow) and, less strictly, next to the face (the ears);
   probably not: everything else.
2. **GrabCut** from those seeds: a 5-component Gaussian mixture for skin and one for non-skin are
   fitted in RGB (luminance and chroma together) and a graph cut adds edge-aware smoothness
   (C. Rother, V. Kolmogorov and A. Blake, "GrabCut: interactive foreground extraction using
   iterated graph cuts", SIGGRAPH 2004).

The largest face's two mixtures then classify the rest of the image inside the person mask
(MediaPipe selfie segmentation), which finds arms and hands away from the faces. Eyes, eyebrows,
lips and the inner mouth are cut out, and a guided filter with the image as guide aligns the
soft edge with the image's edges (K. He, J. Sun and X. Tang, "Guided Image Filtering",
IEEE TPAMI 35(6), 2013); photos larger than ``work_px`` are segmented on a reduced copy and
brought back to full size by the fast guided filter. The features are cut out once more at full
size, so that the filter does not bleed skin into them.

Parameters were tuned on the training split of FASSEG multipose (see ``bench/skin_iou.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from meiyan._array import Mask, check_rgb, from_float32
from meiyan.face import FEATURES, Face, PersonSegmenter
from meiyan.face.regions import FaceFrame, region_mask, region_polygons
from meiyan.face.window import Window
from meiyan.skin.color import ycrcb_mask
from meiyan.skin.landmarks import FaceSkinSegmenter, remove_features

_LOWER_FACE = ("cheeks", "nose", "chin", "jaw")
_GMM_COMPONENTS = 5  # OpenCV's GrabCut mixture size
_FLOOR_PERCENT = 2.0  # body skin must be at least as likely under the skin mixture as this
# percentile of the face window's own skin pixels
_BODY_CHROMA_D2 = 16.0  # and its chroma within this squared Mahalanobis distance of the face's
_MIN_SEEDS = 4 * _GMM_COMPONENTS  # fewest pixels of each class GrabCut's mixtures are fitted on


@dataclass(frozen=True)
class AdaptiveParams:
    """Tuning of :class:`AdaptiveSkinSegmenter` (lengths in face sizes unless said otherwise).

    ``face_px``: face size in pixels in the GrabCut window; ``iterations``: GrabCut iterations;
    ``seed_erode``: how far seeds keep from the oval's edge; ``seed_d2``: squared Mahalanobis
    distance in Lab under which an oval pixel is certain skin; ``hair_above``: how far above the
    oval's top hair seeds start; window margins ``side``, ``above``, ``below``; ``global_px``:
    long side of the copy classified outside the windows; ``work_px``: larger images are
    segmented on a copy with this long side; ``dark_sigmas``: pixels darker than the face's mean
    lightness by this many of its standard deviations are not "probably skin" (``None``: no such
    test), except in the neck zone and, within ``ear_reach`` of the face oval between the eyes
    and the mouth, unless darker by ``ear_sigmas``; ``feature_feather``: soft edge of the final
    feature cut (0: anti-aliased hard edge); ``refine_radius``, ``refine_eps``: guided filter
    (radius in face sizes, eps on the [0, 1] scale).
    """

    face_px: int = 160
    iterations: int = 2
    seed_erode: float = 0.08
    seed_d2: float = 9.0
    hair_above: float = 0.25
    side: float = 1.25
    above: float = 0.6
    below: float = 1.5
    global_px: int = 512
    work_px: int = 1024
    dark_sigmas: float | None = 2.5
    ear_reach: float = 0.2
    ear_sigmas: float = 4.0
    feature_feather: float = 0.0
    refine_radius: float = 0.025
    refine_eps: float = 1e-2


def _robust_gaussian(
    x: np.ndarray, keep: float = 0.9, rounds: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``x`` (N, 3) after trimming the farthest ``1 - keep`` twice."""
    sample = x
    for _ in range(rounds + 1):
        mu = sample.mean(axis=0)
        cov = np.cov(sample.T) + 1e-2 * np.eye(x.shape[1])
        d2 = _mahalanobis2(sample, mu, cov)
        sample = sample[d2 <= np.quantile(d2, keep)]
    return mu, cov


def _mahalanobis2(x: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row (last axis) of ``x``."""
    d = x - mu
    return ((d @ np.linalg.inv(cov)) * d).sum(axis=-1)


def _gmm_loglik(model: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Log-likelihood of ``x`` (..., 3) under a GrabCut mixture (weights, means, covariances)."""
    k = _GMM_COMPONENTS
    m = model.ravel()
    weights, means, covs = m[:k], m[k : 4 * k].reshape(k, 3), m[4 * k : 13 * k].reshape(k, 3, 3)
    terms = []
    for w, mu, cov in zip(weights, means, covs, strict=True):
        if w <= 0:
            continue
        cov = cov + 1e-6 * np.eye(3)
        _, logdet = np.linalg.slogdet(cov)
        terms.append(np.log(w) - 0.5 * (logdet + _mahalanobis2(x, mu, cov)))
    stacked = np.stack(terms)
    top = stacked.max(axis=0)
    return top + np.log(np.exp(stacked - top).sum(axis=0))


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1.0 / 255.0)


def _guided_upsample(
    mask: np.ndarray, small: np.ndarray, full: np.ndarray, radius: int, eps: float
) -> Mask:
    """Guided filter of ``mask`` (at the size of RGB ``small``) with grey guides, applied to the
    full-size RGB ``full``: the fast guided filter of K. He and J. Sun, "Fast Guided Filter",
    arXiv:1505.00996, 2015 (coefficients at low resolution, upsampled, applied at full)."""
    guide = _gray(small)
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT_101)

    mean_i, mean_p = box(guide), box(mask)
    var_i = box(guide * guide) - mean_i * mean_i
    a = (box(guide * mask) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    a, b = box(a), box(b)
    if full.shape[:2] != small.shape[:2]:
        size = (full.shape[1], full.shape[0])
        a = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, size, interpolation=cv2.INTER_LINEAR)
        guide = _gray(full)
    out = a * guide
    out += b
    return np.clip(out, 0.0, 1.0, out=out)


@functools.cache
def _grabcut() -> ThreadPoolExecutor:
    """The thread GrabCut runs on (see :func:`_seeded_grabcut`)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="meiyan-grabcut")


def _seeded_grabcut(
    bgr: np.ndarray, labels: np.ndarray, bg: np.ndarray, fg: np.ndarray, iterations: int
) -> None:
    """GrabCut with its k-means seeded by a fixed RNG, so that an image always gives the same
    mask. OpenCV's RNG is per thread: seeding it on meiyan's own GrabCut thread leaves the
    caller's RNG as it was."""
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, labels, None, bg, fg, iterations, cv2.GC_INIT_WITH_MASK)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


@dataclass(frozen=True)
class _ColourModel:
    """A face window's GrabCut mixtures, for classifying skin away from the faces."""

    fg: np.ndarray
    bg: np.ndarray
    floor: float  # low percentile of the skin mixture's log-likelihood on the window's skin
    chroma: tuple[np.ndarray, np.ndarray]  # mean and covariance of the seed skin's (a*, b*)

    def skin(self, bgr: np.ndarray) -> np.ndarray:
        """Skin probability of ``(N, 3)`` uint8 BGR colours: skin likelier than not, and only in
        colours the face's skin has (its mixture's likelihood and its chroma)."""
        x = bgr.astype(np.float64)
        fg = _gmm_loglik(self.fg, x)
        llr = fg - _gmm_loglik(self.bg, x)
        lab = cv2.cvtColor(bgr.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
        d2 = _mahalanobis2(lab.reshape(-1, 3)[:, 1:].astype(np.float64), *self.chroma)
        gate = np.clip(fg - self.floor + 0.5, 0.0, 1.0)
        gate *= np.clip((_BODY_CHROMA_D2 - d2) / _BODY_CHROMA_D2 + 0.5, 0.0, 1.0)
        return (gate / (1.0 + np.exp(-np.clip(llr, -30.0, 30.0)))).astype(np.float32)


@dataclass(frozen=True)
class _Window:
    """A face's GrabCut window: ``box`` in image pixels, its skin and colour model."""

    box: tuple[int, int, int, int]
    skin: np.ndarray  # float32 at window resolution
    model: _ColourModel | None  # None where GrabCut had too few seeds of a class to run
    face_size: float


class AdaptiveSkinSegmenter(FaceSkinSegmenter):
    """Skin mask from a colour model fitted per image on its faces' landmark skin.

    Call it on an RGB image (uint8 or float32) with its faces: ``(H, W)`` float32 mask in
    [0, 1]. The person segmentation model is created on first use.
    """

    def __init__(
        self, person: PersonSegmenter | None = None, params: AdaptiveParams | None = None
    ) -> None:
        self._person = person
        self.params = params or AdaptiveParams()

    @property
    def person(self) -> PersonSegmenter:
        if self._person is None:
            self._person = PersonSegmenter()
        return self._person

    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> Mask:
        check_rgb(image)
        rgb = np.ascontiguousarray(
            image if image.dtype == np.uint8 else from_float32(image, np.uint8)
        )
        if not faces:
            return np.zeros(rgb.shape[:2], np.float32)
        h, w = rgb.shape[:2]
        p = self.params
        # Large photos are segmented on a reduced copy; the guided filter brings the mask back
        # to full resolution along the photo's own edges.
        scale = min(1.0, p.work_px / max(h, w))
        work, work_faces = rgb, list(faces)
        if scale < 1.0:
            dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA)
            work_faces = [f.rescaled(dsize[0] / w, dsize[1] / h, work.shape[:2]) for f in faces]
        person = self.person(work)
        windows = [self._grabcut(work, person, face) for face in work_faces]
        skin = self._compose(work, person, windows)
        for face in work_faces:
            skin *= 1.0 - region_mask(face.landmarks, FEATURES, work.shape[:2], feather=0.0)
        radius = max(1, round(p.refine_radius * max(f.size for f in work_faces)))
        skin = _guided_upsample(skin, work, rgb, radius, p.refine_eps)
        # The guided filter lets skin bleed into small features: cut them out again, softly.
        for face in faces:
            remove_features(skin, face, p.feature_feather * face.size)
        return skin

    def _window_box(self, face: Face, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        p, (h, w) = self.params, shape
        x0, y0, x1, y1 = face.bbox
        s = face.size
        cx = (x0 + x1) / 2
        return (
            max(int(cx - (0.5 + p.side) * s), 0),
            max(int(y0 - p.above * s), 0),
            min(int(np.ceil(cx + (0.5 + p.side) * s)), w),
            min(int(np.ceil(y1 + p.below * s)), h),
        )

    def _seeds(self, small: np.ndarray, person: np.ndarray, lm: np.ndarray, size: float):
        """GrabCut's initial labels for a window (landmarks ``lm`` in window pixels), the
        feature mask and the seed skin's chroma Gaussian; ``None`` if the face is too small to
        give skin seeds."""
        p = self.params
        shape = small.shape[:2]
        features = region_mask(lm, FEATURES, shape) > 0.5
        near_features = cv2.dilate(features.astype(np.uint8), _disk(1)) > 0
        erode = _disk(max(1, round(p.seed_erode * size)))

        def inner(names: str | tuple[str, ...]) -> np.ndarray:
            m = (region_mask(lm, names, shape, exclude=FEATURES) > 0.5).astype(np.uint8)
            return (cv2.erode(m, erode) > 0) & ~near_features

        lower, oval = inner(_LOWER_FACE), inner("face_oval")
        if lower.sum() < _MIN_SEEDS:
            lower = oval
        if lower.sum() < _MIN_SEEDS:
            return None
        lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        mu, cov = _robust_gaussian(lab[lower].astype(np.float64))
        d2 = _mahalanobis2(lab, mu, cov)

        frame = FaceFrame.of(lm)

        def uv(pts: np.ndarray) -> np.ndarray:  # frame coordinates in pixels
            return frame.uv(pts) * frame.scale

        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        u = (xx - frame.origin[0]) * frame.x[0] + (yy - frame.origin[1]) * frame.x[1]
        v = (xx - frame.origin[0]) * frame.y[0] + (yy - frame.origin[1]) * frame.y[1]
        oval_uv = uv(np.concatenate(region_polygons(lm, "face_oval")))
        top = oval_uv[:, 1].min()
        mouth = uv(np.concatenate(region_polygons(lm, "upper_lip")))[:, 1].mean()
        jaw = oval_uv[oval_uv[:, 1] >= mouth, 0]
        if jaw.size == 0:
            jaw = oval_uv[:, 0]
        neck = (v >= mouth) & (u >= jaw.min()) & (u <= jaw.max())
        face_area = (region_mask(lm, "face_oval", shape) > 0.5).astype(np.uint8)
        ring = cv2.dilate(face_area, _disk(max(1, round(p.ear_reach * size))))
        ears = (ring > 0) & (v >= 0) & (v <= mouth)
        near_face = cv2.dilate(face_area, erode) > 0
        hair = (person >= 0.5) & (v < top - p.hair_above * size) & ~near_face

        labels = np.full(shape, cv2.GC_PR_BGD, np.uint8)
        plausible = ycrcb_mask(small) >= 0.5
        if p.dark_sigmas is not None:
            sigma = np.sqrt(cov[0, 0])
            dark = lab[..., 0] < mu[0] - p.dark_sigmas * sigma
            darker = lab[..., 0] < mu[0] - p.ear_sigmas * sigma
            plausible &= ~dark | neck | (ears & ~darker)
        labels[(person >= 0.5) & plausible] = cv2.GC_PR_FGD
        labels[person < 0.1] = cv2.GC_BGD
        labels[hair & (d2 > p.seed_d2)] = cv2.GC_BGD
        labels[oval & (d2 < p.seed_d2)] = cv2.GC_FGD
        labels[lower] = cv2.GC_FGD
        return labels, features, (mu[1:], cov[1:, 1:])

    def _grabcut(self, rgb: np.ndarray, person: np.ndarray, face: Face) -> _Window:
        p = self.params
        x0, y0, x1, y1 = self._window_box(face, rgb.shape[:2])
        scale = min(1.0, p.face_px / max(face.size, 1.0))
        dsize = (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale)))
        sx, sy = dsize[0] / (x1 - x0), dsize[1] / (y1 - y0)
        small = cv2.resize(rgb[y0:y1, x0:x1], dsize, interpolation=cv2.INTER_AREA)
        small_person = cv2.resize(person[y0:y1, x0:x1], dsize, interpolation=cv2.INTER_AREA)
        lm = (face.landmarks.astype(np.float64) - (x0, y0)) * (sx, sy)
        seeds = self._seeds(small, small_person, lm, face.size * scale)
        if seeds is None:  # a face of a few pixels: its landmark skin is all there is
            skin = region_mask(lm, "face_oval", dsize[::-1], exclude=FEATURES)
            return _Window((x0, y0, x1, y1), skin, None, face.size)
        labels, features, chroma = seeds
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        fg_seeds = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        if min(fg_seeds.sum(), (~fg_seeds).sum()) < _MIN_SEEDS:
            # All skin or no skin in sight: nothing for GrabCut to separate.
            return _Window(
                (x0, y0, x1, y1), (fg_seeds & ~features).astype(np.float32), None, face.size
            )
        fg_model = np.zeros((1, 13 * _GMM_COMPONENTS), np.float64)
        bg_model = np.zeros((1, 13 * _GMM_COMPONENTS), np.float64)
        _grabcut().submit(_seeded_grabcut, bgr, labels, bg_model, fg_model, p.iterations).result()
        fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        skin = fg & ~features
        model = None
        if fg.any():
            ll = _gmm_loglik(fg_model, bgr[fg].astype(np.float64))
            model = _ColourModel(
                fg_model, bg_model, float(np.percentile(ll, _FLOOR_PERCENT)), chroma
            )
        return _Window((x0, y0, x1, y1), skin.astype(np.float32), model, face.size)

    def _compose(self, rgb: np.ndarray, person: np.ndarray, windows: list[_Window]) -> Mask:
        """Window results where they are, the largest face's colour model elsewhere."""
        h, w = rgb.shape[:2]
        scale = min(1.0, self.params.global_px / max(h, w))
        dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
        inside = np.zeros((h, w), np.float32)
        weight = np.zeros((h, w), np.float32)
        for win in windows:
            x0, y0, x1, y1 = win.box
            local = cv2.resize(win.skin, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            ramp = Window(*win.box).fade((h, w), 0.1 * win.face_size)
            np.maximum(inside[y0:y1, x0:x1], ramp * local, out=inside[y0:y1, x0:x1])
            np.maximum(weight[y0:y1, x0:x1], ramp, out=weight[y0:y1, x0:x1])
        # Outside the windows: the largest face's colour model, where there is a person.
        models = [win for win in windows if win.model is not None]
        rest = cv2.resize((weight < 1.0) * person, dsize, interpolation=cv2.INTER_AREA) > 0.05
        if not models or not rest.any():
            return inside
        model = max(models, key=lambda win: win.face_size).model
        bgr = cv2.cvtColor(cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        body = np.zeros(dsize[::-1], np.float32)
        body[rest] = model.skin(bgr[rest])
        body = cv2.resize(body, (w, h), interpolation=cv2.INTER_LINEAR) * person
        return inside + (1.0 - weight) * body
