"""The one window type: a rectangle of a photo that a stage works on at its own resolution.

Every engine works in a window around a face (or the whole frame): it crops the window, resizes
it to a working size, does its work there and pastes back only what it changed. A window may
overhang the image (the U-Net's square frames do): cropping pads the overhang with black and
pasting touches only pixels inside the image. Pixel centres follow OpenCV's ``resize``
convention in both grids, so a working pixel ``(u, v)`` is image pixel
``(x0 + (u + 0.5) * fx - 0.5, y0 + (v + 0.5) * fy - 0.5)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from meiyan._resample import resize_area
from meiyan.face.record import Face


@dataclass(frozen=True)
class Window:
    """``[x0, x1) x [y0, y1)`` in image pixels, worked on at ``work`` ``(w, h)``.

    ``work`` ``None`` means the window's own size; ``face`` is the face it was made for, if any.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    work: tuple[int, int] | None = None
    face: Face | None = None

    @classmethod
    def around(
        cls,
        face: Face,
        margins: tuple[float, float, float, float],
        *,
        work_face: float | None = None,
    ) -> Window:
        """The window of ``face``'s landmark box grown by ``margins`` (left, top, right,
        bottom, in face sizes), clipped to its image; worked on with the face at most
        ``work_face`` pixels across (``None``: at full resolution)."""
        h, w = face.image_shape
        bx0, by0, bx1, by1 = face.bbox
        size = face.size
        left, top, right, bottom = margins
        win = cls(
            max(0, math.floor(bx0 - left * size)),
            max(0, math.floor(by0 - top * size)),
            min(w, math.ceil(bx1 + right * size) + 1),
            min(h, math.ceil(by1 + bottom * size) + 1),
            face=face,
        )
        return win if work_face is None else win.reduced(max(1.0, size / work_face))

    @classmethod
    def square(cls, cx: float, cy: float, side: int) -> Window:
        """The square of ``side`` pixels centred at ``(cx, cy)`` (it may overhang)."""
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        return cls(x0, y0, x0 + side, y0 + side)

    @classmethod
    def frame(cls, shape: tuple[int, int]) -> Window:
        """The whole image of ``shape`` ``(H, W)``."""
        return cls(0, 0, shape[1], shape[0])

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``."""
        return self.x0, self.y0, self.x1, self.y1

    @property
    def size(self) -> tuple[int, int]:
        """``(w, h)`` in image pixels."""
        return self.x1 - self.x0, self.y1 - self.y0

    @property
    def shape(self) -> tuple[int, int]:
        """``(h, w)`` in image pixels."""
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def work_size(self) -> tuple[int, int]:
        """``(w, h)`` of the working image."""
        return self.work or self.size

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index of the window in an image it lies within."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def scale(self) -> tuple[float, float]:
        """Image pixels per working pixel, ``(fx, fy)``."""
        w, h = self.size
        ww, wh = self.work_size
        return w / ww, h / wh

    @property
    def face_size(self) -> float:
        """The face's size in working pixels (without a face: half the short working side)."""
        if self.face is None:
            return 0.5 * min(self.work_size)
        fx, fy = self.scale
        return self.face.size / math.sqrt(fx * fy)

    def reduced(self, factor: float) -> Window:
        """This window worked on at ``1 / factor`` of its size."""
        w, h = self.size
        return replace(self, work=(max(1, round(w / factor)), max(1, round(h / factor))))

    def at(self, work: tuple[int, int]) -> Window:
        """This window worked on at ``work`` ``(w, h)``."""
        return replace(self, work=work)

    def to_work(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates ``(N, 2)`` to working pixel coordinates (float32)."""
        fx, fy = self.scale
        p = np.asarray(points, np.float64) - (self.x0, self.y0)
        return ((p + 0.5) / (fx, fy) - 0.5).astype(np.float32)

    def work_face(self) -> Face:
        """The window's face in working pixels (its image is the working image)."""
        if self.face is None:
            raise ValueError("this window was not made for a face")
        fx, fy = self.scale
        face = self.face
        x0, y0, x1, y1 = face.bbox
        corners = self.to_work(np.array([[x0, y0], [x1, y1]]))
        return replace(
            face,
            landmarks=self.to_work(face.landmarks),
            depth=face.depth / np.float32(math.sqrt(fx * fy)),
            bbox=tuple(float(v) for v in corners.ravel()),
            image_shape=self.work_size[::-1],
        )

    def sample(self, whole: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
        """A map of the whole image (float32, any resolution, e.g. a person mask worked out on
        a small copy) sampled bilinearly on this window's working grid ``(h, w)``."""
        (h, w), (sh, sw) = image_shape, whole.shape[:2]
        fx, fy = self.scale
        sx, sy = sw / w, sh / h
        return upsample_window(
            whole, (1.0 / (fx * sx), 1.0 / (fy * sy)), (self.x0 / fx, self.y0 / fy), self.work_size
        )

    def local(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates ``(N, 2)`` in the window's own pixels (float64)."""
        return np.asarray(points, np.float64) - (self.x0, self.y0)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """The window's pixels at full resolution (a view where it lies within the image;
        the overhang padded with zeros otherwise)."""
        h, w = image.shape[:2]
        if self.x0 >= 0 and self.y0 >= 0 and self.x1 <= w and self.y1 <= h:
            return image[self.slices]
        out = np.zeros((*self.shape, *image.shape[2:]), dtype=image.dtype)
        sx0, sy0 = max(self.x0, 0), max(self.y0, 0)
        sx1, sy1 = min(self.x1, w), min(self.y1, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - self.y0 : sy1 - self.y0, sx0 - self.x0 : sx1 - self.x0] = image[
                sy0:sy1, sx0:sx1
            ]
        return out

    def crop(
        self, image: np.ndarray, convert: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        """The window of ``image`` (any dtype, 2-D or 3-D) at the working size.

        ``convert`` is applied to the window's pixels before resizing (e.g. uint8 to float32),
        so that only the window is converted, not the whole photo.
        """
        region = self.pixels(image)
        if convert is not None:
            region = convert(region)
        if self.work_size == self.size:
            return region
        if self.work_size[0] < self.size[0]:
            return resize_area(region, self.work_size)
        return cv2.resize(region, self.work_size, interpolation=cv2.INTER_LINEAR)

    def fade(self, shape: tuple[int, int], width: float) -> np.ndarray:
        """Weights over the window: 1 inside, falling linearly to 0 over ``width`` pixels at
        the window edges that lie inside an image of ``shape`` (no seam where windows end)."""
        h, w = shape
        wy = ramp(self.y1 - self.y0, width, self.y0 > 0, self.y1 < h)
        wx = ramp(self.x1 - self.x0, width, self.x0 > 0, self.x1 < w)
        return np.outer(wy, wx)

    def paste_max(self, out: np.ndarray, values: np.ndarray, feather: float = 0.0) -> None:
        """Put a working-resolution float32 map back into ``out`` ``(H, W)`` in place, keeping
        the maximum where something is there already; only the window's pixels are touched.

        ``feather`` (pixels) fades the map to zero towards window edges inside the image.
        """
        height, width = out.shape[:2]
        full = values.astype(np.float32)  # a copy: the fade below works on it in place
        if full.shape[::-1] != self.size:
            full = cv2.resize(full, self.size, interpolation=cv2.INTER_LINEAR)
        if feather > 0:  # only the faded border strips change (the ramps are 1 elsewhere)
            f = min(math.ceil(feather), *full.shape[:2])
            wy = ramp(full.shape[0], feather, self.y0 > 0, self.y1 < height)
            wx = ramp(full.shape[1], feather, self.x0 > 0, self.x1 < width)
            full[:f] *= wy[:f, None]
            full[-f:] *= wy[-f:, None]
            full[:, :f] *= wx[:f]
            full[:, -f:] *= wx[-f:]
        sx0, sy0 = max(self.x0, 0), max(self.y0, 0)
        sx1, sy1 = min(self.x1, width), min(self.y1, height)
        if sx1 > sx0 and sy1 > sy0:
            region = out[sy0:sy1, sx0:sx1]
            inner = full[sy0 - self.y0 : sy1 - self.y0, sx0 - self.x0 : sx1 - self.x0]
            np.maximum(region, inner, out=region)


def ramp(n: int, width: float, fade_start: bool, fade_end: bool) -> np.ndarray:
    """``n`` weights: 1 inside, falling linearly to 0 over ``width`` samples at the faded ends
    (pixel centres at ``i + 0.5``)."""
    t = np.arange(n, dtype=np.float32) + 0.5
    r = np.ones(n, np.float32)
    width = max(width, 1.0)
    if fade_start:
        r = np.minimum(r, t / width)
    if fade_end:
        r = np.minimum(r, (n - t) / width)
    return np.clip(r, 0.0, 1.0)


def support(mask: np.ndarray, pad: int = 0) -> tuple[int, int, int, int] | None:
    """Box ``(x0, y0, x1, y1)`` around the nonzero pixels of a 2-D ``mask`` (float or bool),
    widened by ``pad`` within it; ``None`` where it has none. Columns are sought only in the
    rows that hold some."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    h, w = mask.shape
    return (
        max(0, int(cols[0]) - pad),
        max(0, int(rows[0]) - pad),
        min(w, int(cols[-1]) + pad + 1),
        min(h, int(rows[-1]) + pad + 1),
    )


def shrink_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (2-D or 3-D, any dtype OpenCV resizes) reduced to ``size`` ``(w, h)``: by
    :func:`resize_area` under a factor of 3, else resized bilinearly to twice ``size`` and
    2 x 2 blocks averaged. At large factors the bilinear step reads about two pixels in
    every ``factor / 2`` along each axis: a mild aliasing (on a 1080p portrait at 3.75x, 0.2
    levels from area averaging with 5% more fine detail), for a copy that a network at a
    few hundred pixels segments (about a third of the time of :func:`resize_area` there,
    whose ``k x k`` averaging at a whole factor of 3 or more is slow). The same image and size
    always give the same copy, so a copy made for one stage can stand in for another's."""
    h, w = image.shape[:2]
    if min(w / size[0], h / size[1]) < 3:
        return resize_area(image, size)
    double = cv2.resize(image, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(double, size, interpolation=cv2.INTER_AREA)


def upsample_window(
    src: np.ndarray,
    scale: tuple[float, float],
    start: tuple[float, float],
    size: tuple[int, int],
    src_origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Bilinear samples of a working-resolution array on a window of image pixels.

    The window has ``size`` ``(w, h)`` and starts at ``start`` (image pixels relative to the
    working image's corner); ``src`` holds working pixels from ``src_origin`` on. Pixel centres
    follow OpenCV's ``resize`` convention, so windows tile into exactly the whole upsampled
    image. Borders are replicated.
    """
    fx, fy = scale
    m = np.array(
        [
            [1.0 / fx, 0.0, (start[0] + 0.5) / fx - 0.5 - src_origin[0]],
            [0.0, 1.0 / fy, (start[1] + 0.5) / fy - 0.5 - src_origin[1]],
        ],
        np.float64,
    )
    # Same resolution at a whole-pixel offset, inside ``src``: the samples are its pixels.
    (w, h), x, y = size, m[0, 2], m[1, 2]
    if fx == fy == 1.0 and x == int(x) and y == int(y):
        x0, y0 = int(x), int(y)
        if x0 >= 0 and y0 >= 0 and x0 + w <= src.shape[1] and y0 + h <= src.shape[0]:
            return src[y0 : y0 + h, x0 : x0 + w].copy()
    return cv2.warpAffine(
        src,
        m,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


__all__ = ["Window", "ramp", "upsample_window"]
