"""Where makeup goes: lips, eye-shadow zones, eyeliner bands, brows, blush and skin masks.

Every mask is built from one face's 478 MediaPipe face-mesh landmarks (I. Grishchenko et al.,
"Attention Mesh: High-fidelity Face Mesh Prediction in Real-time", CVPR Workshops 2020), using
the outlines of :mod:`meiyan.face` (face oval, lips, inner mouth, brows) and, for the lids and
the lower brow edges, MediaPipe's own landmark index sets
(``mediapipe.solutions.face_mesh_connections``). Masks are made in a window of the image (the
landmarks given in window pixels) so that large photos cost no more than their face.

- ``upper_lip``, ``lower_lip``, ``lips``: the lip outlines less the inner mouth, so open mouths
  keep their teeth, tongue and gums out of every lip mask.
- ``eye_shadow``: the skin between the upper lid and the lower edge of the brow, plus a crescent
  under the lower lid (the lower lash line); it stays valid on closed eyes, whose openings shrink
  to a line.
- ``eyeliner``: a band along the upper lash line outside the eye opening, widening towards the
  outer corner, with a short wing.
- ``brows``, ``blush`` (the cheek apples: mesh patches around landmarks 50 and 280), ``skin``
  (the face oval less eyes, brows, lips and mouth: where foundation goes) and ``skin_core`` (skin
  less the eye-shadow zones and blush patches: where the bare skin tone is measured).
- ``eye_openings`` and ``inner_mouth``: what makeup never touches.

Soft masks are anti-aliased polygons blurred by a Gaussian whose sigma is a fraction of the
inter-ocular distance (eye shadow and blush fade outwards only, staying full inside their zone;
skin fades inwards from the face oval), then multiplied by ``1 - mask`` of every part they must
not touch, so "disjoint" holds exactly where it matters (no lip colour on teeth, no shadow on
the eyeball), and cut at the face oval, so nothing outside the face changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from meiyan._array import Mask
from meiyan.face import region_polygons
from meiyan.face.regions import FaceFrame, edge_chains
from meiyan.makeup.roi import Box, blur_mask, support

REGION_NAMES: tuple[str, ...] = ("lips", "eyes", "skin", "brows", "blush")
"""The parts a user selects (``--regions``); ``eyes`` is the eye shadow with the eyeliner."""

PARTS: tuple[str, ...] = (
    "upper_lip",
    "lower_lip",
    "lips",
    "inner_mouth",
    "eye_openings",
    "eye_shadow",
    "eyeliner",
    "eyes",
    "brows",
    "blush",
    "skin",
    "skin_core",
)
"""Every mask :func:`makeup_masks` returns."""

# Eye corners (outer, inner) of the person's right and left eye, where the lid loops split.
_EYE_CORNERS = ((33, 133), (263, 362))
# Cheek-apple landmarks (person's right, left): the centres of the blush patches.
_CHEEK_APPLES = (50, 280)
_BLUSH_RING = 2  # blush patch: mesh vertices within this many mesh edges of the apple
_SUBPIXEL_BITS = 4

# Shapes, in inter-ocular distances (between the eye centres).
_LOWER_CRESCENT = 0.10  # depth of the lower-lash crescent at its middle
_LINER_INNER, _LINER_OUTER = 0.015, 0.06  # eyeliner thickness at the inner and outer corner
_LINER_WING = (0.10, 0.05)  # wing tip beyond the outer corner: outwards, upwards

# Gaussian sigma of each soft mask's edge, in inter-ocular distances.
FEATHER: dict[str, float] = {
    "lips": 0.02,
    "eye_shadow": 0.05,  # outwards from the zone
    "eyeliner": 0.012,
    "brows": 0.025,
    "blush": 0.1,  # outwards from the patch
    "skin": 0.1,  # inwards from the face oval
    "features": 0.02,  # skin's edge at eyes, brows and lips
}
_FULL = 0.98  # a soft mask at least this high counts as full, this low (1 - _FULL) as none


@dataclass(frozen=True)
class _Topology:
    """Landmark index paths of the lids (upper, lower per eye) and the brows' two edges."""

    lids: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    brow_edges: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    mesh_adjacency: dict[int, frozenset[int]]


def _split_at(loop: list[int], a: int, b: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The two paths of a loop between its vertices ``a`` and ``b`` (both ends included)."""
    i = loop.index(a)
    loop = loop[i:] + loop[:i]
    j = loop.index(b)
    return tuple(loop[: j + 1]), (*loop[j:], loop[0])


@cache
def _topology() -> _Topology:
    """Index paths from MediaPipe's connection sets (imported on first use: it is slow)."""
    from meiyan.face._mediapipe import solution

    fmc = solution("face_mesh_connections")

    lids = tuple(
        _split_at(edge_chains(edges)[0], *corners)
        for edges, corners in zip(
            (fmc.FACEMESH_RIGHT_EYE, fmc.FACEMESH_LEFT_EYE), _EYE_CORNERS, strict=True
        )
    )
    brows = tuple(
        tuple(tuple(p) for p in edge_chains(edges)[:2])
        for edges in (fmc.FACEMESH_RIGHT_EYEBROW, fmc.FACEMESH_LEFT_EYEBROW)
    )
    adj: dict[int, set[int]] = defaultdict(set)
    for a, b in fmc.FACEMESH_TESSELATION:
        adj[a].add(b)
        adj[b].add(a)
    return _Topology(
        lids=lids,
        brow_edges=brows,
        mesh_adjacency={k: frozenset(v) for k, v in adj.items()},
    )


def _by_u(frame: FaceFrame, pts: np.ndarray) -> np.ndarray:
    """A path's points ordered along the face's x axis."""
    return pts[np.argsort(frame.uv(pts)[:, 0], kind="stable")]


def _eye_polygons(lm: np.ndarray, frame: FaceFrame) -> dict[str, list[np.ndarray]]:
    """Eye openings, eye-shadow zones and eyeliner bands of both eyes, as pixel polygons."""
    topo = _topology()
    out: dict[str, list[np.ndarray]] = {"eye_openings": [], "eye_shadow": [], "eyeliner": []}
    for (half_a, half_b), edges in zip(topo.lids, topo.brow_edges, strict=True):
        a, b = lm[list(half_a)], lm[list(half_b)]
        upper, lower = sorted((a, b), key=lambda p: frame.uv(p)[:, 1].mean())
        upper, lower = _by_u(frame, upper), _by_u(frame, lower)
        # The brow edge nearer the mouth is its lower edge.
        brow_lower = lm[list(max(edges, key=lambda e: frame.uv(lm[list(e)])[:, 1].mean()))]
        brow_lower = _by_u(frame, brow_lower)
        out["eye_openings"].append(np.concatenate([upper, lower[::-1]]))
        # Lid to brow: the upper lid, then the brow's lower edge walked back.
        out["eye_shadow"].append(np.concatenate([upper, brow_lower[::-1]]))
        # Lower-lash crescent: the lower lid, and the lid pushed down, deepest at its middle.
        uv = frame.uv(lower)
        t = (uv[:, 0] - uv[0, 0]) / max(uv[-1, 0] - uv[0, 0], 1e-9)
        deep = uv + np.column_stack([np.zeros_like(t), _LOWER_CRESCENT * np.sin(np.pi * t)])
        out["eye_shadow"].append(np.concatenate([lower, frame.xy(deep)[::-1]]))
        # Eyeliner: the upper lid and the lid pushed up, thicker towards the outer corner.
        uv = frame.uv(upper)
        centre_u = frame.uv(lm[list(set(half_a) | set(half_b))])[:, 0].mean()
        outward = 1.0 if uv[-1, 0] - centre_u > centre_u - uv[0, 0] else -1.0
        t = (uv[:, 0] - uv[0, 0]) / max(uv[-1, 0] - uv[0, 0], 1e-9)
        if outward < 0:
            t = 1.0 - t
        width = _LINER_INNER + (_LINER_OUTER - _LINER_INNER) * t
        top = uv - np.column_stack([np.zeros_like(t), width])
        corner = uv[-1] if outward > 0 else uv[0]
        wing = corner + np.array([outward * _LINER_WING[0], -_LINER_WING[1]])
        if outward > 0:
            band = np.concatenate([uv, wing[None], top[::-1]])
        else:
            band = np.concatenate([wing[None], uv, top[::-1]])
        out["eyeliner"].append(frame.xy(band))
    return out


def _blush_polygons(lm: np.ndarray) -> list[np.ndarray]:
    """Cheek-apple patches: convex hulls of the mesh vertices near landmarks 50 and 280."""
    adj = _topology().mesh_adjacency
    polys = []
    for apple in _CHEEK_APPLES:
        ring = {apple}
        for _ in range(_BLUSH_RING):
            ring |= {n for v in ring for n in adj[v]}
        pts = lm[sorted(ring)].astype(np.float32)
        polys.append(cv2.convexHull(pts).reshape(-1, 2).astype(np.float64))
    return polys


def _fill(polys: Sequence[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, Box | None]:
    """Anti-aliased union of pixel polygons (pixel centres at integer coordinates), in [0, 1],
    and the box holding its nonzero pixels (scaled to [0, 1] only there)."""
    canvas = np.zeros(shape, np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    pts = [np.round(p * scale).astype(np.int32) for p in polys if len(p) >= 3]
    if pts:
        cv2.fillPoly(canvas, pts, 255, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    out = np.zeros(shape, np.float32)
    box = support(canvas)
    if box is not None:
        np.multiply(canvas[box], np.float32(1.0 / 255.0), out=out[box])
    return out, box


def makeup_masks(
    landmarks: np.ndarray, shape: tuple[int, int], *, soft: bool = True
) -> dict[str, Mask]:
    """Every makeup part of one face (see :data:`PARTS`) as ``(H, W)`` float32 masks in [0, 1].

    ``landmarks``: ``(478, 2)`` face-mesh points in the pixels of the ``shape`` ``(H, W)``
    window; ``soft``: feathered edges (for blending), else anti-aliased hard edges (for
    measuring). :func:`mask_sets` gives both for the cost of one.
    """
    return mask_sets(landmarks, shape)[0 if soft else 1]


def mask_sets(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[dict[str, Mask], ...]:
    """``(soft, hard)``: :func:`makeup_masks` with both kinds of edge, made once."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (478, 2):
        raise ValueError(f"landmarks must have shape (478, 2), got {lm.shape}")
    shape = (int(shape[0]), int(shape[1]))
    frame = FaceFrame.of(lm)
    eyes = _eye_polygons(lm, frame)
    filled = {
        "oval": _fill(region_polygons(lm, "face_oval"), shape),
        "upper_lip": _fill(region_polygons(lm, "upper_lip"), shape),
        "lower_lip": _fill(region_polygons(lm, "lower_lip"), shape),
        "inner_mouth": _fill(region_polygons(lm, "inner_mouth"), shape),
        "brows": _fill(region_polygons(lm, "eyebrows"), shape),
        "blush": _fill(_blush_polygons(lm), shape),
        **{name: _fill(polys, shape) for name, polys in eyes.items()},
    }
    hard = {name: mask for name, (mask, _) in filled.items()}

    scale = frame.scale

    def keep_out(mask: np.ndarray, *names: str) -> np.ndarray:
        """``mask`` times ``1 - hard[n]`` for each name, a new array: only the part's box
        changes (the factor is 1 elsewhere)."""
        mask = mask.copy()
        for n in names:
            box = filled[n][1]
            if box is not None:
                mask[box] *= 1.0 - hard[n][box]
        return mask

    def feather(name: str, mask: np.ndarray, outward: bool = False) -> np.ndarray:
        """Blurred edge across the outline, or (``outward``) all outside it: full inside."""
        blurred = blur_mask(mask, FEATHER[name] * scale, blocks=True)
        return _clip(2.0 * blurred) if outward else blurred

    features = hard["upper_lip"].copy()
    for n in ("lower_lip", "inner_mouth", "eye_openings", "brows"):
        np.maximum(features, hard[n], out=features)
    skin_hard = keep_out(hard["oval"] * (1.0 - features), "inner_mouth", "eye_openings")
    # Soft masks. The lips' shared edge: each half keeps its own side of the hard split.
    upper = keep_out(feather("lips", hard["upper_lip"]), "inner_mouth", "lower_lip")
    lower = keep_out(feather("lips", hard["lower_lip"]), "inner_mouth", "upper_lip")
    upper = np.maximum(upper, hard["upper_lip"] * (1.0 - hard["inner_mouth"]))
    lower = np.maximum(lower, hard["lower_lip"] * (1.0 - hard["inner_mouth"]))
    brows = keep_out(np.maximum(feather("brows", hard["brows"]), hard["brows"]), "eye_openings")
    shadow = keep_out(feather("eye_shadow", hard["eye_shadow"], True), "eye_openings", "brows")
    liner = keep_out(feather("eyeliner", hard["eyeliner"]), "eye_openings")
    # Skin: the oval feathered inwards (0 on the outline: nothing outside the face moves),
    # less the features with a narrow edge (they get their own makeup).
    oval = _clip(2.0 * blur_mask(hard["oval"], FEATHER["skin"] * scale, blocks=True) - 1.0)
    edge = _clip(blur_mask(features, FEATHER["features"] * scale))
    skin = keep_out(oval * (1.0 - edge), "inner_mouth", "eye_openings")
    blush = feather("blush", hard["blush"], True) * skin
    soft_masks = {
        "upper_lip": upper,
        "lower_lip": lower,
        "lips": np.maximum(upper, lower),
        "inner_mouth": hard["inner_mouth"].copy(),
        "eye_openings": hard["eye_openings"].copy(),
        "eye_shadow": shadow,
        "eyeliner": liner,
        "eyes": np.maximum(shadow, liner),
        "brows": brows,
        "blush": blush,
        "skin": skin.copy(),
    }
    # Makeup stays on the face: nothing outside the oval moves. (Every mask here is a new
    # array of this function's own, so it is cut in place.)
    for v in soft_masks.values():
        v *= hard["oval"]
    # Bare skin: where foundation is at full strength and no other makeup blends in.
    reach = soft_masks["lips"].copy()
    for n in ("eyes", "brows", "blush"):
        np.maximum(reach, soft_masks[n], out=reach)
    skin_core = skin_hard * ((skin >= _FULL) & (reach <= 1.0 - _FULL))
    soft_set = soft_masks | {"skin_core": skin_core}
    upper_h = hard["upper_lip"] * (1.0 - hard["inner_mouth"])
    lower_h = hard["lower_lip"] * (1.0 - hard["inner_mouth"]) * (1.0 - upper_h)
    shadow_h = keep_out(hard["eye_shadow"], "eye_openings", "brows")
    liner_h = keep_out(hard["eyeliner"], "eye_openings")
    hard_set = {
        "upper_lip": upper_h,
        "lower_lip": lower_h,
        "lips": np.maximum(upper_h, lower_h),
        "inner_mouth": hard["inner_mouth"],
        "eye_openings": hard["eye_openings"],
        "eye_shadow": shadow_h,
        "eyeliner": liner_h,
        "eyes": np.maximum(shadow_h, liner_h),
        "brows": keep_out(hard["brows"], "eye_openings"),
        "blush": hard["blush"] * skin_hard,
        "skin": skin_hard,
    }
    for v in hard_set.values():
        v *= hard["oval"]
    hard_set["skin_core"] = skin_core.copy()
    for kind in (soft_set, hard_set):
        for v in kind.values():
            _clip(v)
    return soft_set, hard_set


def _clip(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to [0, 1] in place (it is a new array of the caller's own)."""
    return np.clip(x, 0.0, 1.0, out=x)


def check_regions(regions: Iterable[str]) -> tuple[str, ...]:
    """The user-facing region names, validated against :data:`REGION_NAMES`, without repeats."""
    out: list[str] = []
    for region in regions:
        if region not in REGION_NAMES:
            raise ValueError(f"unknown makeup region {region!r}; choose from {list(REGION_NAMES)}")
        if region not in out:
            out.append(region)
    return tuple(out)
