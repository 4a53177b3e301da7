"""A membrane fill of a hole that follows the user's colour strokes and sketch lines.

The classical edit engine: inside the hole each channel is the smoothest surface (least
squared gradient: a membrane, the guidance-free case of P. Pérez, M. Gangnet and A. Blake,
"Poisson image editing", SIGGRAPH 2003) that meets the photo around the hole and the colour
strokes drawn inside it, which enter as scattered constraints as in A. Levin, D. Lischinski and
Y. Weiss, "Colorization using optimization", SIGGRAPH 2004. Sketch lines cut the membrane
(the links across a line pixel are weak), so colour may change across them and does not leak
along, and the line pixels are drawn a little darker, as a pencil stroke. No model, no training:
where no network is installed this is what ``meiyan edit`` runs.

The sparse system (one unknown per hole pixel and channel, a five-point stencil) is solved
directly (SuperLU) up to :data:`DIRECT_MAX` hole pixels; a larger hole is filled on a copy
reduced until it has no more, and that fill, enlarged, starts a few conjugate-gradient steps at
full resolution, which take out the seams that the enlargement leaves at the hole's edge, the
strokes and the lines (a membrane is smooth: what the reduction loses is near those).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as linalg

from meiyan._resample import reduce_blocks

BARRIER = 0.002
"""Weight of a link to or from a sketch pixel (1 elsewhere): the membrane is nearly cut, but a
region that lines enclose without a stroke still takes the colour around it. Chosen with
:data:`LINE_DARKEN` on CelebA-HQ training faces (``bench/edit.py``'s holes: 0.002 to 0.2 tried;
the smallest was best in PSNR and sketch F1)."""
LINE_DARKEN = 0.12
"""Sketch pixels inside the hole are this much darker than the membrane there (0 to 0.25
tried: darker lines raise the sketch F1 and lower the PSNR)."""
DIRECT_MAX = 150_000
"""Hole pixels solved directly; more are solved on a reduced copy first."""
_CG_STEPS = 30


def membrane_fill(
    image: np.ndarray,
    hole: np.ndarray,
    sketch: np.ndarray | None = None,
    strokes: np.ndarray | None = None,
    colour: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` (uint8 or float32 RGB in [0, 1]) with ``hole`` (``(H, W)`` bool) filled; the
    result has ``image``'s dtype and equals it outside the hole.

    ``sketch``: ``(H, W)`` bool lines the fill may change colour across; ``strokes``: ``(H, W)``
    bool pixels whose colour the user chose, ``colour`` (``(H, W, 3)`` float32 RGB in [0, 1])
    there. Only the hole's bounding box (and a pixel around it) is read.
    """
    ys, xs = np.nonzero(hole)
    if ys.size == 0:
        return image.copy()
    h, w = hole.shape
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, h)
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, w)
    box = np.s_[y0:y1, x0:x1]
    scale = np.float32(1 / 255) if image.dtype == np.uint8 else np.float32(1)
    known = image[box].astype(np.float32) * scale
    lines = hole[box] & (sketch[box] if sketch is not None else False)
    chosen = hole[box] & (strokes[box] if strokes is not None else False)
    if chosen.any():
        known[chosen] = colour[box][chosen]
    filled = _fill(known, hole[box] & ~chosen, lines)
    filled[lines] *= np.float32(1 - LINE_DARKEN)
    out = image.copy()
    region = out[box]
    inside = hole[box]
    if image.dtype == np.uint8:
        region[inside] = np.rint(np.clip(filled[inside], 0, 1) * 255).astype(np.uint8)
    else:
        region[inside] = np.clip(filled[inside], 0, 1)
    return out


def _fill(known: np.ndarray, unknown: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``known`` (float32 ``(h, w, 3)``) with its ``unknown`` pixels replaced by the membrane
    through the others, cut at ``lines``."""
    n = int(unknown.sum())
    if n == 0:
        return known
    if n == unknown.size:  # nothing to go by (the whole photo erased, no strokes): flat
        return np.broadcast_to(known.mean(axis=(0, 1)), known.shape).astype(np.float32)
    matrix, rhs, ys, xs = _system(known, unknown, lines)
    if n <= DIRECT_MAX:
        solution = linalg.splu(matrix).solve(rhs)
    else:
        factor = int(np.ceil(np.sqrt(n / DIRECT_MAX)))
        start = _coarse_start(known, unknown, lines, factor)[ys, xs].astype(np.float64)
        solution = np.stack([
            linalg.cg(matrix, rhs[:, c], x0=start[:, c], rtol=0.0, maxiter=_CG_STEPS)[0]
            for c in range(3)
        ], 1)
    out = known.copy()
    out[ys, xs] = solution
    return out


def _system(
    known: np.ndarray, unknown: np.ndarray, lines: np.ndarray
) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """The membrane's normal equations over the ``unknown`` pixels: the matrix (symmetric
    positive definite), the right-hand sides (one column per channel) and the pixels' rows and
    columns."""
    h, w = unknown.shape
    ys, xs = np.nonzero(unknown)
    n = ys.size
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    diagonal = np.zeros(n)
    rhs = np.zeros((n, 3))
    rows, cols, values = [], [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        i, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        weight = np.where(lines[ys[i], xs[i]] | lines[ny, nx], BARRIER, 1.0)
        diagonal[i] += weight
        j = index[ny, nx]
        free = j >= 0
        rows.append(i[free])
        cols.append(j[free])
        values.append(-weight[free])
        fixed = known[ny[~free], nx[~free]] * weight[~free, None]
        for c in range(3):
            rhs[:, c] += np.bincount(i[~free], fixed[:, c], minlength=n)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values.append(diagonal)
    matrix = sparse.csc_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return matrix, rhs, ys, xs


def _coarse_start(
    known: np.ndarray, unknown: np.ndarray, lines: np.ndarray, factor: int
) -> np.ndarray:
    """The fill worked out on a copy reduced ``factor`` times (whole blocks: a block with a
    known pixel is known, the mean of its known pixels; strokes stay known) and enlarged
    back."""
    h, w = unknown.shape
    weight = (~unknown).astype(np.float32)
    share = reduce_blocks(weight, factor)
    small = reduce_blocks(known * weight[..., None], factor) / np.maximum(share, 1e-6)[..., None]
    small_lines = reduce_blocks(lines.astype(np.float32), factor) > 0
    coarse = _fill(small.astype(np.float32), share == 0, small_lines)
    big = cv2.resize(coarse, (factor * share.shape[1], factor * share.shape[0]),
                     interpolation=cv2.INTER_LINEAR)
    return big[:h, :w]


__all__ = ["BARRIER", "DIRECT_MAX", "LINE_DARKEN", "membrane_fill"]
