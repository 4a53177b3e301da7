"""REST API of ``meiyan serve`` through an HTTP client: every endpoint, every error status, the
metadata kept, the limits; and the settings schema shared with the CLI's ``--settings``."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from meiyan.serve import jobs, schema
from meiyan.serve.app import ServeConfig, create_app

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "meiyan" / "data" / "astronaut.jpg"


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(ServeConfig(ui=False, workers=2))) as c:
        yield c


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    """The sample with EXIF and an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "meiyan test camera"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.open(SAMPLE).save(buf, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc)
    return buf.getvalue()


def _post(client: TestClient, job: str, data: dict | None = None, **files: bytes):
    return client.post(f"/v1/{job}", data=data or {},
                       files={k: (f"{k}.bin", v) for k, v in files.items()})


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"]
    return body["error"]


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert {f"/v1/{j}" for j in jobs.FILES} <= set(paths)
    beautify = paths["/v1/beautify"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"image", "preset", "smooth", "min_face"} <= set(beautify["schema"]["properties"])
    assert client.get("/docs").status_code == 200


def test_beautify_keeps_format_and_metadata(client: TestClient, jpeg: bytes) -> None:
    r = _post(client, "beautify", {"preset": "strong", "smooth": "0.7"}, image=jpeg)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(jpeg)) as a, Image.open(io.BytesIO(r.content)) as b:
        assert b.format == "JPEG" and b.size == a.size
        assert b.info["icc_profile"] == a.info["icc_profile"]
        assert b.getexif()[0x010F] == "meiyan test camera"
        assert np.abs(np.asarray(b, int) - np.asarray(a, int)).mean() > 0.2
    assert "x-meiyan-warning" not in r.headers


def test_no_face_warns_in_a_header(client: TestClient) -> None:
    flat = _png(np.full((64, 80, 3), 128, np.uint8))
    r = _post(client, "beautify", image=flat)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "no face" in r.headers["x-meiyan-warning"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), np.full((64, 80, 3), 128))


def test_smooth_mask_landmarks(client: TestClient, jpeg: bytes) -> None:
    r = _post(client, "smooth", {"strength": "0.8", "filter": "guided"}, image=jpeg)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    r = _post(client, "mask", {"method": "classic"}, image=jpeg)
    with Image.open(io.BytesIO(r.content)) as m:
        assert r.headers["content-type"] == "image/png" and m.mode == "L" and m.size == (512, 512)
        assert 0 < np.asarray(m).mean() < 255
    r = _post(client, "landmarks", {"min-face": "0.1"}, image=jpeg)
    record = r.json()
    assert (record["width"], record["height"], len(record["faces"])) == (512, 512, 1)
    assert set(record["faces"][0]) == {"bbox", "score", "pose", "landmarks"}
    assert np.asarray(record["faces"][0]["landmarks"]).shape == (478, 3)


def test_makeup_look_reference_and_shade(client: TestClient, jpeg: bytes) -> None:
    settings = {"look": "party", "regions": "lips,eyes", "shade": "lips=1,eyes=0.5"}
    look = _post(client, "makeup", settings, image=jpeg)
    assert look.status_code == 200 and look.headers["content-type"] == "image/jpeg"
    made = _post(client, "makeup", {"regions": "lips", "format": "png"}, image=jpeg,
                 reference=look.content)
    assert made.status_code == 200 and made.headers["content-type"] == "image/png"
    faceless = _png(np.full((64, 64, 3), 90, np.uint8))
    assert "reference" in _error(_post(client, "makeup", image=jpeg, reference=faceless), 422)
    assert "look" in _error(_post(client, "makeup", image=jpeg), 422)


def test_edit_changes_only_the_mask(client: TestClient) -> None:
    with Image.open(SAMPLE) as im:
        pixels = np.asarray(im.convert("RGB"))
    hole = np.zeros(pixels.shape[:2], np.uint8)
    hole[200:230, 220:260] = 255
    r = _post(client, "edit", {"engine": "classic"}, image=_png(pixels), mask=_png(hole))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    inside = hole > 0
    assert np.array_equal(out[~inside], pixels[~inside]) and (out[inside] != pixels[inside]).any()
    small = _png(np.zeros((10, 10), np.uint8))
    assert "mask is 10x10" in _error(_post(client, "edit", image=_png(pixels), mask=small), 422)


def test_errors(client: TestClient, jpeg: bytes) -> None:
    assert "not a JPEG" in _error(_post(client, "beautify", image=b"plain text\n"), 400)
    assert "multipart" in _error(client.post("/v1/beautify", content=b"x"), 400)
    assert "limit of 25 MB" in _error(_post(client, "beautify", image=b"\0" * (30 * 2**20)), 413)
    assert "smooth" in _error(_post(client, "beautify", {"smooth": "2"}, image=jpeg), 422)
    assert "smoth: unknown" in _error(_post(client, "beautify", {"smoth": "1"}, image=jpeg), 422)
    assert "image: a file is required" in _error(_post(client, "beautify", mask=jpeg), 422)
    assert "unknown preset" in _error(_post(client, "beautify", {"preset": "x"}, image=jpeg), 422)


def test_pixel_limit_token_busy_and_timeout(jpeg: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(ui=False, workers=1, queue=0, timeout=0.5, max_pixels=100_000,
                         token="secret")
    with TestClient(create_app(config)) as c:
        auth = {"Authorization": "Bearer secret"}
        r = c.post("/v1/landmarks", files={"image": ("a.jpg", jpeg)})
        assert _error(r, 401).startswith("a bearer token") and r.headers["www-authenticate"]
        r = c.post("/v1/landmarks", files={"image": ("a.jpg", jpeg)}, headers=auth)
        assert "limit of 100,000 pixels" in _error(r, 413)
        small = _png(np.full((32, 32, 3), 100, np.uint8))
        gate = threading.Event()
        c.app.state.pool.submit(gate.wait, 5)  # the one worker is taken, the queue is empty
        r = c.post("/v1/landmarks", files={"image": ("a.png", small)}, headers=auth)
        assert "busy" in _error(r, 503)
        gate.set()
        monkeypatch.setattr(jobs, "run", lambda *a: time.sleep(2))
        r = c.post("/v1/landmarks", files={"image": ("a.png", small)}, headers=auth)
        assert "timed out" in _error(r, 504)
        assert not list(Path(c.app.state.uploads).iterdir())  # every upload deleted


def test_refuses_open_address_without_token() -> None:
    from click.testing import CliRunner

    from meiyan.serve.cli import serve

    result = CliRunner().invoke(serve, ["--host", "0.0.0.0"], env={"MEIYAN_TOKEN": ""})
    assert result.exit_code == 2 and "not a loopback address" in result.output


def test_schema_matches_beautify_settings() -> None:
    from dataclasses import fields

    from meiyan.retouch.beautify import BeautifySettings

    names = {f.name for f in fields(BeautifySettings)}
    assert set(schema.BeautifyJob.model_fields) == names | {"preset"}
    s = schema.parse("beautify", {"preset": "strong", "min-face": "0.1", "moles": "true"})
    assert s.settings() == BeautifySettings.preset("strong", min_face=0.1, moles=True)


def test_cli_settings_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from meiyan.cli.main import main

    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"preset": "strong", "smooth": 0.2, "tone": 0.1}))
    run = CliRunner().invoke
    args = ["beautify", str(SAMPLE), "-j", "1", "--overwrite"]
    assert run(main, [*args, "-o", str(tmp_path / "a"), "--settings", str(settings),
                      "--tone", "0"]).exit_code == 0
    assert run(main, [*args, "-o", str(tmp_path / "b"), "--preset", "strong", "--smooth", "0.2",
                      "--tone", "0"]).exit_code == 0
    a, b = (tmp_path / d / "astronaut.jpg" for d in "ab")
    assert a.read_bytes() == b.read_bytes()
    settings.write_text(json.dumps({"smoth": 0.2}))
    bad = run(main, [*args, "-o", str(tmp_path / "c"), "--settings", str(settings)])
    assert bad.exit_code == 2 and "smoth: unknown setting" in bad.output
