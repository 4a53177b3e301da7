"""Lee's local-statistics filter (J.-S. Lee, 1980): adaptive mix of pixel and local mean."""

from __future__ import annotations

import numpy as np

from meiyan._array import Float32Image, check_float_rgb
from meiyan.filters._box import box_mean
from meiyan.filters._params import check_positive, check_radius


def local_mean(image: Float32Image, *, radius: int = 5, noise_var: float = 0.002) -> Float32Image:
    """Lee's local mean and variance filter of a float32 RGB image in [0, 1], per channel.

    J.-S. Lee, "Digital image enhancement and noise filtering by use of local statistics",
    IEEE TPAMI 2(2), 1980, additive-noise case. With the local mean ``m`` and variance ``v_z``
    over the ``(2r+1) x (2r+1)`` window, the signal variance is estimated as
    ``v = max(v_z - noise_var, 0)`` and

        out = m + k (x - m),   k = v / (v + noise_var),

    so flat areas (local variance at the noise level) go to the local mean and edges and texture
    (variance well above ``noise_var``, on the [0, 1] scale) are kept. Box means make the cost
    O(1) per pixel in ``radius``; borders are mirrored.
    """
    p = check_float_rgb(image)
    r = check_radius(radius)
    nv = np.float32(check_positive(noise_var, "noise_var"))
    m = box_mean(p, r)
    k = box_mean(p * p, r)
    k -= m * m  # local variance
    k -= nv
    np.maximum(k, 0.0, out=k)  # signal variance
    np.divide(k, k + nv, out=k)
    out = p - m
    out *= k
    out += m
    return out
