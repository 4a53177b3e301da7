"""Weighted least squares smoothing (Farbman et al., 2008), exact and fast separable solvers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from meiyan._array import Float32Image, check_float_rgb
from meiyan.filters._params import check_positive

if TYPE_CHECKING:
    import scipy.sparse as sp

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""Rec. 601 luma weights: the luminance whose log gradients set the smoothness weights."""
_EPS = 1e-4
"""The paper's epsilon in ``a = (|d log L|^alpha + eps)^-1``: caps the weight in flat areas."""
_LOG_OFFSET = 1e-4
"""Added to the luminance before the log so black pixels give finite gradients."""
_FAST_ITERATIONS = 3
"""Iterations of the separable solver; Min et al. (2014) use 3."""
EXACT_MAX_PIXELS = 250_000
"""``method="auto"`` solves exactly up to this many pixels and uses the fast solver above it."""


def _check_params(lam: float, alpha: float) -> tuple[float, float]:
    return check_positive(lam, "lam"), check_positive(alpha, "alpha")


def _smoothness_weights(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Farbman's ``a_x`` ``(H, W-1)`` and ``a_y`` ``(H-1, W)`` between neighbouring pixels.

    Float32 throughout: the rounding of the log gradients (~1e-6) is far below ``_EPS``.
    """
    log_lum = np.log(p @ _LUMA + np.float32(_LOG_OFFSET))
    a = np.float32(alpha)
    a_x = 1.0 / (np.abs(np.diff(log_lum, axis=1)) ** a + np.float32(_EPS))
    a_y = 1.0 / (np.abs(np.diff(log_lum, axis=0)) ** a + np.float32(_EPS))
    return a_x, a_y


def wls_system(
    image: Float32Image, *, lam: float = 0.5, alpha: float = 1.2
) -> tuple[sp.csc_matrix, np.ndarray]:
    """The sparse system ``(I + lam L_g) u = g`` that :func:`wls` solves exactly.

    Returns ``(A, b)``: ``A`` is the ``N x N`` float64 matrix (``N = H * W``, pixels in row-major
    order) and ``b`` the ``(N, 3)`` float64 right-hand side, the image itself; the filtered image
    is ``u.reshape(H, W, 3)``. ``L_g = Dx^T Ax Dx + Dy^T Ay Dy`` is the five-point Laplacian
    weighted by the smoothness weights of :func:`wls`. ``A`` is symmetric, positive definite and
    an M-matrix with unit row sums, so ``u`` is a convex combination of the input values.
    """
    p = check_float_rgb(image)
    lam, alpha = _check_params(lam, alpha)
    h, w = p.shape[:2]
    n = h * w
    a_x, a_y = _smoothness_weights(p, alpha)
    # Couplings in the flattened order: pixel i to i+1 (zero across row ends) and i to i+w.
    east = np.zeros((h, w))
    east[:, :-1] = lam * a_x
    south = np.zeros((h, w))
    south[:-1, :] = lam * a_y
    east, south = east.ravel(), south.ravel()
    diag = 1.0 + east + south
    diag[1:] += east[:-1]
    diag[w:] += south[: n - w]
    offsets, bands = [0], [diag]
    if w > 1:
        offsets += [1, -1]
        bands += [-east[:-1], -east[:-1]]
    if h > 1:
        offsets += [w, -w]
        bands += [-south[: n - w], -south[: n - w]]
    import scipy.sparse as sp  # imported on first use: SciPy is slow to import

    A = sp.diags(bands, offsets, shape=(n, n), format="csc")
    return A, p.reshape(n, 3).astype(np.float64)


def wls_solve(A: sp.csc_matrix, b: np.ndarray) -> np.ndarray:
    """Float64 solution ``u`` of ``A u = b`` for the system of :func:`wls_system`.

    One direct factorisation (SuperLU with a minimum-degree ordering of ``A + A^T`` and no
    pivoting, which the symmetric positive definite ``A`` does not need) serves all columns of
    ``b``. :func:`wls` with ``method="exact"`` returns this solution rounded to float32.
    """
    import scipy.sparse.linalg as spla

    lu = spla.splu(
        A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    return lu.solve(b)


def _tridiagonal_smooth(u: np.ndarray, c: np.ndarray) -> None:
    """Solve ``u_i + c_{i-1} (u_i - u_{i-1}) + c_i (u_i - u_{i+1}) = f_i`` along axis 0, in place.

    ``u`` holds ``f`` on entry, ``(n, m, 3)``, and the solution on return; ``c`` holds the
    ``(n-1, m, 1)`` couplings. Every column ``m`` is an independent symmetric tridiagonal system,
    all solved together by the Thomas algorithm (the matrix is diagonally dominant, so no pivoting
    is needed).
    """
    n = u.shape[0]
    if n == 1:
        return
    diag = np.ones((n, *c.shape[1:]), c.dtype)
    diag[:-1] += c
    diag[1:] += c
    # Forward sweep: q_i = -(upper diagonal) / pivot; u_i becomes the modified right-hand side.
    q = np.empty_like(c)
    inv = 1.0 / diag[0]
    q[0] = c[0] * inv
    u[0] *= inv
    for i in range(1, n):
        inv = 1.0 / (diag[i] - c[i - 1] * q[i - 1])
        if i < n - 1:
            np.multiply(c[i], inv, out=q[i])
        u[i] += c[i - 1] * u[i - 1]
        u[i] *= inv
    for i in range(n - 2, -1, -1):
        u[i] += q[i] * u[i + 1]


def _solve_fast(p: np.ndarray, lam: float, alpha: float) -> np.ndarray:
    """Min et al. (2014): alternate 1-D row and column solves with a decreasing lambda."""
    a_x, a_y = _smoothness_weights(p, alpha)
    a_x = np.ascontiguousarray(a_x.T)[..., None]  # (W-1, H, 1)
    a_y = a_y[..., None]  # (H-1, W, 1)
    u = p
    t_max = _FAST_ITERATIONS
    for t in range(1, t_max + 1):
        lam_t = np.float32(3.0 * 4.0 ** (t_max - t) / (4.0**t_max - 1.0) * lam)
        rows = np.ascontiguousarray(u.transpose(1, 0, 2))  # a copy: never writes to ``p``
        _tridiagonal_smooth(rows, lam_t * a_x)
        u = np.ascontiguousarray(rows.transpose(1, 0, 2))
        del rows
        _tridiagonal_smooth(u, lam_t * a_y)
    return np.clip(u, 0.0, 1.0, out=u)


def wls(
    image: Float32Image, *, lam: float = 0.5, alpha: float = 1.2, method: str = "auto"
) -> Float32Image:
    """Weighted least squares edge-preserving smoothing of a float32 RGB image in [0, 1].

    Z. Farbman, R. Fattal, D. Lischinski and R. Szeliski, "Edge-preserving decompositions for
    multi-scale tone and detail manipulation", SIGGRAPH 2008. Each channel ``g`` becomes the ``u``
    minimising ``sum_p (u_p - g_p)^2 + lam (a_x,p (du/dx)_p^2 + a_y,p (du/dy)_p^2)``, with the
    smoothness weights ``a = (|d l|^alpha + 1e-4)^-1`` from the gradients of the log luminance
    ``l = log(Y + 1e-4)`` (Rec. 601 luma) of the input, shared by the three channels. Larger
    ``lam`` smooths more; larger ``alpha`` makes the result more sensitive to strong edges. The
    default ``lam=0.5`` keeps over 90% of a 0.5 step 2 px from it while removing over 90% of
    sigma-0.03 noise; ``lam=1`` already lets the step lose about 9%.

    ``method="exact"`` solves the sparse system of :func:`wls_system` directly with
    :func:`wls_solve` (about a second per 0.25 megapixel). ``method="fast"`` is the
    separable approximation of D. Min, S. Choi, J. Lu, B. Ham, K. Sohn and M. N. Do, "Fast Global
    Image Smoothing Based on Weighted Least Squares", IEEE TIP 23(12), 2014: three iterations of
    1-D tridiagonal solves along every row then every column with the same weights, the t-th
    with ``lam_t = 3 * 4^(3-t) / (4^3 - 1) * lam``. The paper writes this schedule with 1.5 in
    place of 3 for its own scaling of lambda; with 3 the ``lam_t`` add up to ``lam`` of this
    energy, which matched the exact solution about three times more closely (RMS) on test
    images. Cost O(1) per pixel. ``"auto"`` is exact up to :data:`EXACT_MAX_PIXELS` pixels and
    fast above.
    """
    p = check_float_rgb(image)
    lam, alpha = _check_params(lam, alpha)
    if method not in ("auto", "exact", "fast"):
        raise ValueError(f"method must be 'auto', 'exact' or 'fast', got {method!r}")
    if method == "auto":
        method = "exact" if p.shape[0] * p.shape[1] <= EXACT_MAX_PIXELS else "fast"
    if method == "exact":
        u = wls_solve(*wls_system(p, lam=lam, alpha=alpha))
        return np.clip(u, 0.0, 1.0).astype(np.float32).reshape(p.shape)
    return _solve_fast(p, lam, alpha)
