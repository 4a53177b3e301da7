"""``meiyan mask`` and ``meiyan landmarks``: skin masks and face landmarks of photos."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click
import cv2
import numpy as np

from meiyan.cli.batch import Output, run_batch, warn
from meiyan.cli.engine_options import device_option, min_face_option
from meiyan.cli.options import batch_options
from meiyan.face import Face, analyze, region_polygons
from meiyan.io.image import (
    LoadedImage,
    from_float,
    read_image,
    to_float,
)
from meiyan.serve.options import settings_option
from meiyan.skin import SLOT as SKIN
from meiyan.skin import choices, skin_mask

_OUTLINES = ("face_oval", "eyebrows", "eyes", "upper_lip", "lower_lip", "irises")


def _rgb(img: LoadedImage) -> np.ndarray:
    """The pixels as the public APIs take them: uint8 as is, 16-bit as float32 in [0, 1]."""
    return img.pixels if img.pixels.dtype == np.uint8 else to_float(img.pixels)


@click.command("mask")
@batch_options
@settings_option("mask")
@click.option(
    "--method",
    type=click.Choice(choices()),
    default="auto",
    show_default=True,
    help="Skin segmenter (auto: the best within this job's speed budget; the colour rule "
    "where no face is found).",
)
@min_face_option
@device_option
def mask(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    method: str,
    min_face: float,
) -> None:
    """Write the skin mask of each photo as OUTDIR/<name>.png (8-bit grey, 255 = skin).

    Skin is what retouching should touch: face, neck, ears and visible body skin, not eyes,
    eyebrows, lips, inner mouth, hair or clothes. Edges are soft.
    """
    needs_faces = SKIN.get(method).needs_faces
    output = Output.of(out_dir, overwrite, ("", ".png"))

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        rgb = _rgb(img)
        faces = analyze(rgb, min_face=min_face) if needs_faces else None
        m = skin_mask(rgb, method, faces=faces)  # its warnings are reported by run_batch
        grey = cv2.convertScaleAbs(m, alpha=255.0)  # rounded and saturated, no float copy
        del m
        # Written as one grey channel, upright, with no colour profile.
        like = replace(img, alpha=None, icc_profile=None, exif=None, grayscale=True)
        output.image(path, np.repeat(grey[..., None], 3, axis=2), suffix=".png", like=like)

    sys.exit(run_batch(inputs, job, desc="mask", output=output))


def face_record(face: Face) -> dict:
    """One face as JSON-ready data: box, score, pose and the 478 ``(x, y, z)`` landmarks."""
    pts = np.column_stack([face.landmarks, face.depth]).astype(np.float64)
    return {
        "bbox": [round(v, 2) for v in face.bbox],
        "score": round(face.score, 4),
        "pose": {
            "yaw": round(face.pose.yaw, 2),
            "pitch": round(face.pose.pitch, 2),
            "roll": round(face.pose.roll, 2),
        },
        "landmarks": np.round(pts, 2).tolist(),
    }


def draw_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A uint8 RGB copy of ``image`` with each face's mesh, outlines, box and pose drawn."""
    from meiyan.face._mediapipe import solution

    tesselation = solution("face_mesh_connections").FACEMESH_TESSELATION

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 800))
    for face in faces:
        lm = face.landmarks
        scale = 16  # 4 fractional bits
        pts = np.round(lm * scale).astype(np.int32)
        lines = [np.stack([pts[a], pts[b]]) for a, b in tesselation]
        mesh = out.copy()
        cv2.polylines(mesh, lines, False, (255, 255, 255), max(1, thick // 2), cv2.LINE_AA, 4)
        cv2.addWeighted(mesh, 0.35, out, 0.65, 0.0, dst=out)  # a light mesh
        for name in _OUTLINES:
            polys = [np.round(p * scale).astype(np.int32) for p in region_polygons(lm, name)]
            cv2.polylines(out, polys, True, (0, 220, 90), thick, cv2.LINE_AA, 4)
        x0, y0, x1, y1 = (round(v) for v in face.bbox)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 160, 0), thick, cv2.LINE_AA)
        label = f"yaw {face.pose.yaw:.0f} pitch {face.pose.pitch:.0f} roll {face.pose.roll:.0f}"
        font = max(0.4, face.size / 400)
        origin = (x0, max(0, y0 - 4 * thick))
        style = (cv2.FONT_HERSHEY_SIMPLEX, font, (255, 160, 0), thick, cv2.LINE_AA)
        cv2.putText(out, label, origin, *style)
    return out


@click.command("landmarks")
@batch_options
@settings_option("landmarks")
@click.option(
    "--overlay", is_flag=True, help="Also write OUTDIR/<name> with the face mesh drawn on it."
)
@min_face_option
def landmarks(
    inputs: tuple[Path, ...],
    out_dir: Path,
    overwrite: bool,
    max_pixels: int,
    overlay: bool,
    min_face: float,
) -> None:
    """Write the faces of each photo as OUTDIR/<name>.json.

    Per face: box (x0, y0, x1, y1), detector score, head pose (yaw, pitch, roll in degrees;
    yaw > 0: the face turns to the image's left) and the 478 MediaPipe face-mesh landmarks
    (x, y in pixels of the upright image, z a relative depth in pixels).
    """
    output = Output.of(out_dir, overwrite, ("", ".json"), *[("", None)] * overlay)

    def job(path: Path) -> None:
        img = read_image(path, max_pixels=max_pixels)
        faces = analyze(_rgb(img), min_face=min_face)
        if not faces:
            warn("no face found")
        h, w = img.pixels.shape[:2]
        record = {
            "image": path.name,
            "width": w,
            "height": h,
            "faces": [face_record(f) for f in faces],
        }
        output.text(path, json.dumps(record))
        if overlay:
            rgb8 = img.pixels
            if rgb8.dtype != np.uint8:
                rgb8 = from_float(to_float(rgb8), np.uint8)
            drawn = draw_faces(rgb8, faces)
            like = replace(img, grayscale=False)  # the drawing is in colour
            output.image(path, drawn, like=like)

    sys.exit(run_batch(inputs, job, desc="landmarks", output=output))


__all__ = ["draw_faces", "face_record", "landmarks", "mask"]
