"""Named face regions built from MediaPipe face-mesh landmarks and rasterised as soft masks.

The outlines come from the landmark index sets that ship with MediaPipe
(``mediapipe.solutions.face_mesh_connections``: face oval, lips, eyes, eyebrows, irises, nose),
chained into polygons. Regions that the mesh does not outline (forehead, cheeks, chin, jaw) are
cut from the face oval by lines of a face frame: the x axis runs from the right eye's centre to
the left eye's, the y axis perpendicular to it, towards the mouth.

Landmark numbering: I. Grishchenko, A. Ablavatski, Y. Kartynnik, K. Raveendran and M. Grundmann,
"Attention Mesh: High-fidelity Face Mesh Prediction in Real-time", CVPR Workshops 2020.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from meiyan._array import Mask

REGIONS: tuple[str, ...] = (
    "face_oval",
    "forehead",
    "cheeks",
    "nose",
    "upper_lip",
    "lower_lip",
    "inner_mouth",
    "eyes",
    "irises",
    "eyebrows",
    "chin",
    "jaw",
)
"""Names accepted by :func:`region_mask` and ``Face.region``."""

FEATURES: tuple[str, ...] = ("eyes", "eyebrows", "upper_lip", "lower_lip", "inner_mouth")
"""Regions that are not skin: what a skin mask leaves out of the face oval."""

# Mouth corners on the outer and inner lip contours: where the lip loops split into upper and
# lower halves (MediaPipe landmarks 61/291 and 78/308).
_OUTER_CORNERS = (61, 291)
_INNER_CORNERS = (78, 308)
_CIRCLE_VERTICES = 32
_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class _Topology:
    """Landmark index chains of every outlined feature."""

    oval: tuple[int, ...]
    lips_outer: tuple[tuple[int, ...], tuple[int, ...]]
    lips_inner: tuple[tuple[int, ...], tuple[int, ...]]
    eyes: tuple[tuple[int, ...], ...]
    brows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    irises: tuple[tuple[int, ...], ...]
    nose: tuple[int, ...]


def edge_chains(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Order an undirected edge set into its paths (from an end) and loops."""
    adj: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    ends = sorted(v for v, n in adj.items() if len(n) == 1)
    seen: set[int] = set()
    chains = []
    for start in ends + sorted(adj):
        if start in seen:
            continue
        chain, cur = [start], start
        seen.add(start)
        while nxt := [n for n in adj[cur] if n not in seen]:
            cur = nxt[0]
            chain.append(cur)
            seen.add(cur)
        chains.append(chain)
    return chains


def _split_loop(loop: list[int], corners: tuple[int, int]) -> tuple[tuple[int, ...], ...]:
    """Cut a loop at two of its vertices into two paths that both include the corners."""
    i = loop.index(corners[0])
    loop = loop[i:] + loop[:i]
    j = loop.index(corners[1])
    return tuple(loop[: j + 1]), (*loop[j:], loop[0])


@cache
def _topology() -> _Topology:
    """Index chains from MediaPipe's connection sets (imported on first use: it is slow)."""
    from meiyan.face._mediapipe import solution

    fmc = solution("face_mesh_connections")

    lips = edge_chains(fmc.FACEMESH_LIPS)
    outer = next(c for c in lips if _OUTER_CORNERS[0] in c)
    inner = next(c for c in lips if _INNER_CORNERS[0] in c)
    return _Topology(
        oval=tuple(edge_chains(fmc.FACEMESH_FACE_OVAL)[0]),
        lips_outer=_split_loop(outer, _OUTER_CORNERS),
        lips_inner=_split_loop(inner, _INNER_CORNERS),
        eyes=tuple(
            tuple(edge_chains(e)[0]) for e in (fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_RIGHT_EYE)
        ),
        brows=tuple(
            tuple(tuple(c) for c in edge_chains(b))  # two paths: upper and lower edge
            for b in (fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_RIGHT_EYEBROW)
        ),
        irises=tuple(
            tuple(edge_chains(e)[0]) for e in (fmc.FACEMESH_LEFT_IRIS, fmc.FACEMESH_RIGHT_IRIS)
        ),
        nose=tuple(sorted({i for e in fmc.FACEMESH_NOSE for i in e})),
    )


@dataclass(frozen=True)
class FaceFrame:
    """2-D face frame in pixels: ``origin`` between the eye centres, unit ``x`` from the right
    eye's centre to the left eye's (the person's left), unit ``y`` perpendicular, towards the
    mouth; ``scale`` is the inter-ocular distance in pixels."""

    origin: np.ndarray
    x: np.ndarray
    y: np.ndarray
    scale: float

    @classmethod
    def of(cls, landmarks: np.ndarray) -> FaceFrame:
        """The frame of one face's ``(478, 2)`` landmarks in pixels."""
        lm = np.asarray(landmarks, np.float64)
        left, right = (lm[list(e)].mean(axis=0) for e in _topology().eyes)
        x = left - right
        scale = float(np.hypot(*x))
        x = x / scale if scale > 0 else np.array([1.0, 0.0])
        return cls(
            origin=(left + right) / 2, x=x, y=np.array([-x[1], x[0]]), scale=max(scale, 1.0)
        )

    def uv(self, pts: np.ndarray) -> np.ndarray:
        """``(N, 2)`` frame coordinates, in inter-ocular distances, of ``(N, 2)`` pixel points."""
        d = (np.asarray(pts, np.float64) - self.origin) / self.scale
        return np.column_stack([d @ self.x, d @ self.y])

    def xy(self, uv: np.ndarray) -> np.ndarray:
        """Pixel points of frame coordinates."""
        uv = np.asarray(uv, np.float64)
        return self.origin + self.scale * (uv[:, :1] * self.x + uv[:, 1:] * self.y)


def _clip(
    poly: np.ndarray, frame: FaceFrame, axis: int, limit: float, keep_below: bool
) -> np.ndarray:
    """Sutherland-Hodgman clip of ``poly`` to the half-plane ``u_axis <= limit`` (or ``>=``).

    I. E. Sutherland and G. W. Hodgman, "Reentrant polygon clipping", CACM 17(1), 1974.
    """
    if len(poly) == 0:
        return poly
    s = frame.uv(poly)[:, axis] - limit
    if not keep_below:
        s = -s
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if s[i] <= 0:
            out.append(poly[i])
        if (s[i] <= 0) != (s[j] <= 0):
            t = s[i] / (s[i] - s[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _band(poly: np.ndarray, frame: FaceFrame, axis: int, lo: float, hi: float) -> np.ndarray:
    return _clip(_clip(poly, frame, axis, lo, keep_below=False), frame, axis, hi, keep_below=True)


def _join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One polygon from two paths along the same feature: ``a`` then ``b`` walked back to it."""
    if np.hypot(*(a[-1] - b[0])) > np.hypot(*(a[-1] - b[-1])):
        b = b[::-1]
    return np.concatenate([a, b])


@dataclass(frozen=True)
class _Shape:
    """A region as polygons: ``include`` (union), optionally intersected with ``within``."""

    include: list[np.ndarray]
    within: list[np.ndarray] | None = None


def _shapes(lm: np.ndarray) -> dict[str, _Shape]:
    """Every region's polygons for one face's landmarks (pixel coordinates), read-only; the
    last few faces' are kept, since a job asks for several regions of one face."""
    pts = np.ascontiguousarray(lm, np.float64)
    return _shapes_of(pts.tobytes(), pts.shape)


@functools.lru_cache(maxsize=8)
def _shapes_of(data: bytes, shape: tuple[int, ...]) -> dict[str, _Shape]:
    shapes = _make_shapes(np.frombuffer(data, np.float64).reshape(shape))
    for s in shapes.values():
        for poly in (*s.include, *(s.within or ())):
            poly.setflags(write=False)
    return shapes


def _make_shapes(lm: np.ndarray) -> dict[str, _Shape]:
    """:func:`_shapes` without the cache."""
    topo = _topology()
    pts = lm.astype(np.float64)
    frame = FaceFrame.of(pts)
    oval = pts[list(topo.oval)]
    eyes = [pts[list(e)] for e in topo.eyes]
    brows = [_join(pts[list(a)], pts[list(b)]) for a, b in topo.brows]
    nose = pts[list(topo.nose)]
    nose_hull = cv2.convexHull(nose.astype(np.float32)).reshape(-1, 2).astype(np.float64)

    # Upper and lower lips: the half-loops whose points lie nearer the eyes are the upper ones.
    def lip(outer: tuple[int, ...], inner: tuple[int, ...]) -> np.ndarray:
        return _join(pts[list(outer)], pts[list(inner)])

    def by_height(halves: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
        return sorted(halves, key=lambda c: frame.uv(pts[list(c)])[:, 1].mean())

    upper_lip, lower_lip = (
        lip(o, i)
        for o, i in zip(by_height(topo.lips_outer), by_height(topo.lips_inner), strict=True)
    )
    inner_mouth = pts[list(topo.lips_inner[0] + topo.lips_inner[1][1:-1])]

    irises = []
    for ring in topo.irises:
        ring_pts = pts[list(ring)]
        centre = ring_pts.mean(axis=0)
        radius = float(np.hypot(*(ring_pts - centre).T).mean())
        t = np.linspace(0, 2 * np.pi, _CIRCLE_VERTICES, endpoint=False)
        irises.append(centre + radius * np.column_stack([np.cos(t), np.sin(t)]))

    uv_brows = frame.uv(np.concatenate(brows))
    uv_eyes = frame.uv(np.concatenate(eyes))
    uv_lips = frame.uv(np.concatenate([upper_lip, lower_lip]))
    uv_mid = frame.uv(np.concatenate([nose, upper_lip, lower_lip]))
    brow_top = uv_brows[:, 1].min()
    eye_bottom = uv_eyes[:, 1].max()
    corners = frame.uv(pts[list(_OUTER_CORNERS)])
    mouth_level = corners[:, 1].mean()
    mouth_lo, mouth_hi = np.sort(corners[:, 0])
    mid_lo, mid_hi = uv_mid[:, 0].min(), uv_mid[:, 0].max()
    lip_bottom = uv_lips[:, 1].max()
    far = 4.0 * float(np.ptp(frame.uv(oval), axis=0).max()) + 1.0

    def cut(poly: np.ndarray, u: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
        return _band(_band(poly, frame, 0, *u), frame, 1, *v)

    return {
        "face_oval": _Shape([oval]),
        "forehead": _Shape([cut(oval, (-far, far), (-far, brow_top))]),
        "cheeks": _Shape(
            [
                cut(oval, (-far, mid_lo), (eye_bottom, mouth_level)),
                cut(oval, (mid_hi, far), (eye_bottom, mouth_level)),
            ]
        ),
        "nose": _Shape([nose_hull]),
        "upper_lip": _Shape([upper_lip]),
        "lower_lip": _Shape([lower_lip]),
        "inner_mouth": _Shape([inner_mouth]),
        "eyes": _Shape(eyes),
        "irises": _Shape(irises, within=eyes),
        "eyebrows": _Shape(brows),
        "chin": _Shape([cut(oval, (mouth_lo, mouth_hi), (lip_bottom, far))]),
        "jaw": _Shape(
            [
                cut(oval, (-far, mouth_lo), (mouth_level, far)),
                cut(oval, (mouth_hi, far), (mouth_level, far)),
            ]
        ),
    }


def region_polygons(landmarks: np.ndarray, name: str) -> list[np.ndarray]:
    """Outline(s) of region ``name`` as ``(N, 2)`` float64 pixel polygons (for drawing).

    ``irises`` gives the full iris circles; their masks are clipped to the eye openings.
    """
    _check_names([name])
    return [p for p in _shapes(np.asarray(landmarks))[name].include if len(p) >= 3]


def _check_names(names: Iterable[str]) -> None:
    for name in names:
        if name not in REGIONS:
            raise ValueError(f"unknown face region {name!r}; choose from {list(REGIONS)}")


def _fill(polys: Sequence[np.ndarray], origin: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased union of polygons in a window at ``origin`` of ``size`` (h, w), in [0, 1]."""
    canvas = np.zeros(size, np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    # Pixel centres sit at integer coordinates, so polygon coordinates map to the window as is.
    pts = [np.round((p - origin) * scale).astype(np.int32) for p in polys if len(p) >= 3]
    if pts:
        cv2.fillPoly(canvas, pts, 255, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    return canvas.astype(np.float32) * np.float32(1.0 / 255.0)


def region_mask(
    landmarks: np.ndarray,
    names: str | Sequence[str],
    shape: tuple[int, int],
    *,
    exclude: Sequence[str] = (),
    feather: float = 0.0,
) -> Mask:
    """Soft mask ``(H, W)`` float32 in [0, 1] of the union of regions ``names``, less ``exclude``.

    ``landmarks``: ``(478, 2)`` face-mesh points in pixels; ``shape``: ``(H, W)`` of the image;
    ``feather``: Gaussian sigma of the edge in pixels (0: anti-aliased hard edge).
    """
    names = [names] if isinstance(names, str) else list(names)
    _check_names([*names, *exclude])
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), np.float32)
    shapes = _shapes(np.asarray(landmarks))
    used = [p for n in names for p in shapes[n].include if len(p) >= 3]
    if not used:
        return out
    allpts = np.concatenate(used)
    pad = int(np.ceil(3 * feather)) + 2
    x0 = max(int(np.floor(allpts[:, 0].min())) - pad, 0)
    y0 = max(int(np.floor(allpts[:, 1].min())) - pad, 0)
    x1 = min(int(np.ceil(allpts[:, 0].max())) + pad + 1, w)
    y1 = min(int(np.ceil(allpts[:, 1].max())) + pad + 1, h)
    if x1 <= x0 or y1 <= y0:
        return out
    origin = np.array([x0, y0], np.float64)
    size = (y1 - y0, x1 - x0)
    m = np.zeros(size, np.float32)
    for n in names:
        np.maximum(m, _shape_mask(shapes[n], origin, size), out=m)
    if exclude:
        cut = np.zeros(size, np.float32)
        for n in exclude:
            np.maximum(cut, _shape_mask(shapes[n], origin, size), out=cut)
        m *= 1.0 - cut
    if feather > 0:
        # Replicated borders: where the window is cut by the image edge the region goes on.
        m = cv2.GaussianBlur(m, (0, 0), feather, borderType=cv2.BORDER_REPLICATE)
    out[y0:y1, x0:x1] = m
    return np.clip(out, 0.0, 1.0)


def _shape_mask(shape: _Shape, origin: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Hard (anti-aliased) mask of one region's polygons in a window."""
    part = _fill(shape.include, origin, size)
    if shape.within is not None:
        part *= _fill(shape.within, origin, size)
    return part
