"""Face detection at any size, landmarks, head pose, named regions and EXIF orientation.

Real faces come from the shipped public-domain sample (a 512x512 portrait with a face about 100
pixels across), tiled and scaled into test pictures.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from meiyan.face import (
    FEATURES,
    REGIONS,
    Face,
    FaceDetector,
    analyze,
    default_detector,
    head_pose,
    person_mask,
    region_mask,
    region_polygons,
)
from meiyan.face.detect import tile_levels
from meiyan.io.image import read_image


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image


def test_face_record(face: Face, portrait: np.ndarray) -> None:
    h, w = portrait.shape[:2]
    assert face.landmarks.shape == (478, 2) and face.landmarks.dtype == np.float32
    assert face.depth.shape == (478,)
    assert face.image_shape == (h, w)
    x0, y0, x1, y1 = face.bbox
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # The sample's face is about 100 pixels, upright and looking at the camera.
    assert 80 < face.size < 140
    assert 0.5 < face.score <= 1.0
    assert abs(face.pose.yaw) < 15 and abs(face.pose.roll) < 10 and abs(face.pose.pitch) < 20
    assert face.points3d().shape == (478, 3)


def test_regions_lie_inside_the_face_oval(face: Face) -> None:
    oval = face.region("face_oval", feather=0) > 0
    oval = cv2.dilate(oval.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    for name in REGIONS:
        m = face.region(name, feather=0)
        assert m.sum() > 20, name
        assert m[~oval].sum() <= 0.01 * m.sum(), name


def test_regions_are_in_anatomical_order(face: Face) -> None:
    """Top to bottom in an upright face: forehead, brows, eyes, nose, lips, chin."""
    order = ["forehead", "eyebrows", "eyes", "nose", "upper_lip", "lower_lip", "chin"]
    rows = [np.argwhere(face.region(n, feather=0) > 0.5)[:, 0].mean() for n in order]
    assert rows == sorted(rows)
    # Irises sit inside the eyes, the partition regions do not overlap much.
    irises, eyes = face.region("irises", 0), face.region("eyes", 0)
    assert (irises * (1 - eyes)).sum() < 0.05 * irises.sum()
    parts = [face.region(n, 0) for n in ("forehead", "cheeks", "chin", "jaw")]
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            # Neighbours share only their anti-aliased edge (about a pixel wide).
            assert (parts[i] * parts[j]).sum() < 0.08 * min(parts[i].sum(), parts[j].sum())


def test_feather_softens_edges(face: Face) -> None:
    hard = face.region("cheeks", feather=0)
    soft = face.region("cheeks", feather=4)
    partial = lambda m: int(((m > 0.02) & (m < 0.98)).sum())  # noqa: E731
    assert partial(soft) > 3 * partial(hard)
    assert abs(soft.sum() - hard.sum()) < 0.05 * hard.sum()
    assert soft.min() >= 0 and soft.max() <= 1 and soft.dtype == np.float32


def test_region_mask_union_and_exclusion(face: Face) -> None:
    shape = face.image_shape
    skin = region_mask(face.landmarks, "face_oval", shape, exclude=FEATURES)
    for name in FEATURES:
        assert skin[face.region(name, 0) > 0.99].max() < 0.01
    lips = region_mask(face.landmarks, ["upper_lip", "lower_lip"], shape)
    assert np.allclose(lips, np.maximum(face.region("upper_lip", 0), face.region("lower_lip", 0)))
    with pytest.raises(ValueError, match="unknown face region"):
        region_mask(face.landmarks, "ears", shape)
    assert all(p.shape[1] == 2 for p in region_polygons(face.landmarks, "eyes"))


def test_several_faces_give_one_face_each(portrait: np.ndarray) -> None:
    head = portrait[40:300, 110:350]  # one head and shoulders, 260x240
    canvas = np.full((560, 1000, 3), 200, np.uint8)
    spots = [(20, 20, 1.0), (330, 120, 1.6), (760, 40, 0.8)]
    for x, y, s in spots:
        paste(canvas, cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), x, y)
    faces = analyze(canvas)
    assert len(faces) == 3
    for f, (x, y, s) in zip(faces, spots, strict=True):  # faces come left to right
        cx, cy = (f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2
        assert x < cx < x + 240 * s and y < cy < y + 260 * s


def test_graph_runs_spread_over_two_lanes_give_the_one_lane_result(
    portrait: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The face pass's detector and mesh runs on two threads, each with its own graphs, find
    the same faces with the same landmarks as one thread running them all in turn."""
    import meiyan.face.detect as detect

    head = portrait[40:300, 110:350]
    canvas = np.full((900, 1600, 3), 180, np.uint8)  # two squares: five detector runs
    for x, y, s in [(40, 300, 1.2), (700, 100, 2.0), (1300, 500, 1.0)]:
        paste(canvas, cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), x, y)
    monkeypatch.setenv("MEIYAN_THREADS", "2")
    monkeypatch.setattr(detect, "_LANES", 1)
    one = FaceDetector()
    serial = one.analyze(canvas, min_face=0.03)  # tiles too
    monkeypatch.setattr(detect, "_LANES", 2)
    two = FaceDetector()
    spread = two.analyze(canvas, min_face=0.03)
    assert {lane for _, lane in one._graphs} == {0}
    assert {lane for _, lane in two._graphs} == {0, 1}  # the second lane did run
    assert len(serial) == len(spread) == 3
    for a, b in zip(serial, spread, strict=True):
        assert np.array_equal(a.landmarks, b.landmarks) and a.score == b.score


def test_small_face_in_a_large_picture(portrait: np.ndarray) -> None:
    small = cv2.resize(portrait, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    canvas = np.full((1500, 2000, 3), 120, np.uint8)
    paste(canvas, small, 1400, 900)
    faces = analyze(canvas)
    assert len(faces) == 1
    f = faces[0]
    assert f.size < 100  # a tiny face, found by the tiled search
    assert f.bbox[0] > 1400 and f.bbox[1] > 900


def test_face_filling_the_frame(portrait: np.ndarray, face: Face) -> None:
    x0, y0, x1, y1 = (round(v) for v in face.bbox)
    crop = portrait[y0 - 10 : y1 + 10, x0 - 10 : x1 + 10]
    big = cv2.resize(crop, (1200, 1300), interpolation=cv2.INTER_CUBIC)
    faces = analyze(big)
    assert len(faces) == 1
    assert faces[0].size > 900


def test_no_face() -> None:
    gradient = np.linspace(0, 255, 300 * 400, dtype=np.float32).reshape(300, 400)
    assert analyze(np.dstack([gradient] * 3).astype(np.uint8)) == []


def test_float_input_matches_uint8(portrait: np.ndarray, face: Face) -> None:
    faces = analyze(portrait.astype(np.float32) / 255)
    assert len(faces) == 1
    assert np.abs(faces[0].landmarks - face.landmarks).max() < 2.0


def test_roll_follows_an_in_plane_rotation(portrait: np.ndarray, face: Face) -> None:
    # OpenCV's positive angle turns the picture counter-clockwise; roll > 0 is clockwise.
    rot = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    turned = cv2.warpAffine(portrait, rot, (512, 512), borderMode=cv2.BORDER_REFLECT)
    faces = analyze(turned)
    assert len(faces) == 1
    assert faces[0].pose.roll == pytest.approx(face.pose.roll - 20, abs=4)


def test_yaw_sign_and_size_on_rotated_points(face: Face) -> None:
    """Turning the mesh about the vertical axis, face towards the image's left, adds yaw."""
    pts = face.points3d().astype(np.float64)
    centre = pts.mean(axis=0)
    t = np.radians(30)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    turned = (pts - centre) @ rot.T + centre
    assert head_pose(turned).yaw == pytest.approx(head_pose(pts).yaw + 30, abs=2)


def test_exif_rotated_photo_gives_aligned_masks(
    tmp_path: Path, portrait: np.ndarray, face: Face
) -> None:
    # Orientation 6: the stored pixels are the picture turned 90 degrees counter-clockwise.
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(portrait).copy()).save(path, quality=95, exif=exif)
    img = read_image(path)
    assert img.pixels.shape == portrait.shape
    faces = analyze(img.pixels)
    assert len(faces) == 1
    a = faces[0].region("face_oval", 0) > 0.5
    b = face.region("face_oval", 0) > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.9


def test_tile_levels_cover_small_faces() -> None:
    assert tile_levels(512, 370, 48) == []
    levels = tile_levels(4000, 6000, 60)
    assert levels
    for level in levels:
        side = level[0][2]
        xs = sorted({x for x, _, _ in level})
        ys = sorted({y for _, y, _ in level})
        assert xs[0] == 0 and xs[-1] + side == 6000 and ys[0] == 0 and ys[-1] + side == 4000
        # Consecutive tiles overlap by half a side: any face up to side/2 fits in one.
        assert all(b - a <= side // 2 for a, b in itertools.pairwise(xs))


def test_detector_arguments_and_shared_instance() -> None:
    with pytest.raises(ValueError):
        FaceDetector(min_score=0)
    with pytest.raises(ValueError, match="min_face"):
        analyze(np.zeros((64, 64, 3), np.uint8), min_face=0)
    assert default_detector() is default_detector()
    with pytest.raises(ValueError):
        analyze(np.zeros((10, 10), np.uint8))


def test_detector_is_safe_across_threads(portrait: np.ndarray, face: Face) -> None:
    results: list[list[Face]] = []

    def work() -> None:
        results.append(analyze(portrait))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for faces in results:
        assert len(faces) == 1 and np.allclose(faces[0].landmarks, face.landmarks, atol=1e-3)


def test_person_mask(portrait: np.ndarray, face: Face) -> None:
    m = person_mask(portrait)
    assert m.shape == portrait.shape[:2] and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    cx, cy = (round((face.bbox[0] + face.bbox[2]) / 2), round((face.bbox[1] + face.bbox[3]) / 2))
    assert m[cy, cx] > 0.9  # the face is part of the person
    assert m[20:60, 440:500].mean() < 0.1  # the background at the top right is not


def test_mediapipe_start_up_lines_stay_off_the_terminal(
    tmp_path: Path, portrait: np.ndarray
) -> None:
    """A fresh process that finds a face and segments the person prints nothing on stderr
    (TFLite, absl and the face-mesh landmark stage log on a graph's first frame with a face)."""
    path = tmp_path / "portrait.npy"
    np.save(path, portrait)
    code = (
        "import sys, numpy as np; from meiyan.face import analyze, person_mask; "
        "im = np.load(sys.argv[1]); assert analyze(im); person_mask(im)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_graph_is_built_in_its_first_frames_silenced_stretch(capfd) -> None:
    """MediaPipe starts a graph's calculators on its own threads, which log after the
    constructor returns: a graph is built only when its first frame runs, with fd 2 silenced
    from building to the end of that frame. Stand-in: a constructor whose thread writes to fd 2
    50 ms after it returns, and a first frame that takes 300 ms."""
    import os
    import time

    from meiyan.errors import ModelError
    from meiyan.face._quiet import load_graph

    built: list[threading.Thread] = []

    class Graph:
        def process(self, image: np.ndarray) -> object:
            time.sleep(0.3)
            return type("Result", (), {"detections": [1]})()

    def make() -> Graph:
        late = threading.Thread(target=lambda: (time.sleep(0.05), os.write(2, b"calculator log\n")))
        late.start()
        built.append(late)
        return Graph()

    graph = load_graph(make, "a test graph")
    assert not built  # nothing is built before a frame needs it
    graph.process(np.zeros((8, 8, 3), np.uint8))
    built[0].join()
    assert len(built) == 1 and capfd.readouterr().err == ""

    def broken() -> Graph:
        raise RuntimeError("no such model")

    with pytest.raises(ModelError, match="cannot load a broken graph: no such model"):
        load_graph(broken, "a broken graph").process(np.zeros((8, 8, 3), np.uint8))


def test_a_whole_image_map_sampled_on_a_window_matches_the_window_worked_out_alone() -> None:
    from meiyan.face.window import Window

    h, w = 900, 1200
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    full = np.sin(xx / 97.0) * np.cos(yy / 61.0)
    small = cv2.resize(full, (300, 225), interpolation=cv2.INTER_AREA)
    win = Window(210, 130, 810, 730).reduced(2.0)
    got = win.sample(small, (h, w))
    alone = cv2.resize(full[130:730, 210:810], win.work_size, interpolation=cv2.INTER_AREA)
    assert got.shape == (300, 300)
    assert np.abs(got - alone)[5:-5, 5:-5].max() < 0.003
    shifted = Window(214, 130, 814, 730).reduced(2.0).sample(small, (h, w))  # 2 working px
    assert np.abs(shifted[:, :-2] - got[:, 2:])[5:-5, 5:-5].max() < 0.003


@pytest.mark.parametrize("factor", [1.05, 1.2, 1.25, 1.41, 1.82, 2.0, 2.34, 2.99, 3.75, 5.3])
def test_resize_area_is_close_to_area_averaging_and_as_sharp(
    portrait: np.ndarray, factor: float
) -> None:
    from meiyan._resample import resize_area

    def fine(x: np.ndarray) -> float:  # energy of the detail under a sigma-1 blur
        x = x.astype(np.float32)
        return float(np.square(x - cv2.GaussianBlur(x, (0, 0), 1.0)).mean())

    h, w = portrait.shape[:2]
    size = (round(w / factor), round(h / factor))
    area = cv2.resize(portrait, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    got = resize_area(portrait, size)
    assert got.shape == area.shape and got.dtype == np.uint8
    # Plain bilinear resampling is 0.9-3.7 levels off from 1.5x, with 23-56% more "detail"
    # (aliasing); this stays within 0.6 levels and 15%.
    assert np.abs(got - area).mean() < 0.6
    assert 0.85 < fine(got) / fine(area) < 1.15
    red = portrait[..., 0].astype(np.float32)
    plane = resize_area(red, size)
    assert plane.dtype == np.float32
    assert np.abs(plane - cv2.resize(red, size, interpolation=cv2.INTER_AREA)).mean() < 0.6
    if factor == 2.0:
        np.testing.assert_array_equal(got, area)  # a whole factor is OpenCV's area averaging


@pytest.mark.parametrize("factor", [3.0, 3.75, 5.3, 11.7])
def test_shrink_area_is_close_to_area_averaging_at_large_factors(
    portrait: np.ndarray, factor: float
) -> None:
    from meiyan.face.window import shrink_area

    # The sample at 4x (cubic), so that 11.7x is a 24 MP photo's reduction to a 512-pixel copy.
    big = cv2.resize(portrait, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    size = (round(2048 / factor), round(2048 / factor))
    area = cv2.resize(big, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    got = shrink_area(big, size)
    assert got.shape == area.shape and got.dtype == np.uint8
    # 0.13-0.61 levels off; reading every (factor / 2)-th pixel first, as it did before, was
    # 1.0 and 1.7 off at 5.3x and 11.7x.
    assert np.abs(got - area).mean() < 0.7


def test_reduce_blocks_averages_whole_blocks_with_the_edge_repeated() -> None:
    from meiyan._resample import reduce_blocks

    x = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)
    padded = np.pad(x, ((0, 2), (0, 1)), mode="edge")
    means = padded.reshape(3, 3, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(reduce_blocks(x, 3), means, rtol=1e-6)
    np.testing.assert_array_equal(reduce_blocks(x, 3, cv2.INTER_NEAREST), padded[::3, ::3])


def test_rgb3_repeats_a_plane_in_every_channel() -> None:
    from meiyan._array import rgb3

    plane = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = np.ones((3, 4, 3), np.float32) * 2
    np.testing.assert_array_equal(x * rgb3(plane), x * plane[..., None])


def test_stderr_is_silenced_and_given_back_across_threads() -> None:
    # Graphs are built on the shared pool beside the main thread: overlapping quiet sections
    # must neither restore fd 2 under another one nor leave it pointing at /dev/null.
    import os

    from meiyan.face._quiet import _stderr_to_devnull

    before = os.fstat(2)
    inside, release = threading.Event(), threading.Event()

    def second() -> None:
        with _stderr_to_devnull():
            inside.set()
            release.wait(5)

    with _stderr_to_devnull():
        t = threading.Thread(target=second)
        t.start()
        assert inside.wait(5)
    null = os.stat(os.devnull)
    assert (os.fstat(2).st_ino, os.fstat(2).st_dev) == (null.st_ino, null.st_dev)  # still quiet
    release.set()
    t.join(5)
    after = os.fstat(2)
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)


@pytest.mark.slow
def test_the_default_pass_finds_every_face_of_the_default_size_in_composed_scenes(
    real_data: Path,
) -> None:
    """Issue 18: at the default smallest face, recall on ``bench/faces.py``'s scenes (FASSEG
    heads pasted into wide frames, seed 0) is the tiled path's, 1.0, with no false faces. The
    face the whole-image pass used to miss is cut by the frame's top edge."""
    import importlib.util

    if not (real_data / "fasseg-multipose").is_dir():
        pytest.skip(f"fasseg-multipose not found in {real_data}")
    path = Path(__file__).resolve().parents[1] / "bench" / "faces.py"
    spec = importlib.util.spec_from_file_location("bench_faces", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.DATA = real_data
    rng = np.random.default_rng(0)
    heads = bench.cutouts()
    found, false = [], 0
    for i in range(24):
        img, placed = bench.scene(heads, (1080, 1920) if i % 4 else (3000, 4000), rng)
        faces = analyze(img)
        hits = bench.hits(faces, [box for box, _ in placed])
        found += [ok for ok, (_, share) in zip(hits, placed, strict=True) if share >= 0.08]
        false += len(faces) - sum(hits)
    assert len(found) >= 20 and all(found), f"{found.count(False)} of {len(found)} missed"
    assert false == 0
