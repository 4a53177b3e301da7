"""The browser UI in a real headless Chromium (Debian's package, driven by Playwright): upload,
a slider, beautify, a mask stroke and a sketch line on the canvas, the edit, downloads; the
page loads nothing from outside; a screenshot of each tab is taken (into ``$MEIYAN_SCREENSHOTS``
when set: ``MEIYAN_SCREENSHOTS=docs`` refreshes the README's, else into a temporary folder, so
that a test run leaves the work tree as it was)."""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``meiyan serve`` on a free loopback port, in this process."""
    import time

    import uvicorn

    from meiyan.serve.app import ServeConfig, create_app

    app = create_app(ServeConfig(workers=2, timeout=60))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(600):
        if srv.started:
            break
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (see the module's docstring)."""
    folder = os.environ.get("MEIYAN_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _page(browser: object, server: str, outside: list[str]):
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    local = (server, "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    page.goto(server + "/", wait_until="networkidle")
    return page


def _download(page: object, where: str) -> bytes:
    link = page.locator(f"{where} a[download]").first
    link.wait_for(timeout=60_000)
    with page.expect_download() as info:
        link.click()
    return Path(info.value.path()).read_bytes()


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def test_beautify_tab(browser: object, server: str, shots: Path) -> None:
    outside: list[str] = []
    page = _page(browser, server, outside)
    page.locator("#b-photo input[type=file]").set_input_files(str(SAMPLE))
    page.locator("#b-smooth input[type=range]").fill("0.9")
    page.locator("#b-overlay input[type=checkbox]").check()
    page.locator("#b-run").click()
    data = _download(page, "#b-download")
    page.screenshot(path=str(shots / "serve_beautify.png"), full_page=True)
    assert data[:3] == b"\xff\xd8\xff"  # the input's format, JPEG
    before, after = _pixels(SAMPLE.read_bytes()), _pixels(data)
    assert after.shape == before.shape
    assert np.abs(after.astype(int) - before).mean() > 0.2  # retouched
    assert outside == []  # fully offline: nothing but this server


def test_makeup_tab(browser: object, server: str, shots: Path) -> None:
    outside: list[str] = []
    page = _page(browser, server, outside)
    page.get_by_role("tab", name="Makeup").click()
    page.locator("#m-photo input[type=file]").set_input_files(str(SAMPLE))
    page.locator("#m-run").click()
    page.locator("#m-download a[download]").first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "serve_makeup.png"), full_page=True)
    assert outside == []


def test_edit_tab(browser: object, server: str, tmp_path: Path, shots: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    from meiyan.serve import jobs

    seen = {}
    real = jobs.edit

    def record(img, settings, hole, sketch=None, colour=None):
        seen.update(mask=hole.alpha > 127, sketch=sketch.pixels[..., 0] > 127,
                    engine=settings.engine)
        return real(img, settings, hole, sketch, colour)

    monkeypatch.setattr(jobs, "edit", record)
    png = tmp_path / "astronaut.png"
    with Image.open(SAMPLE) as im:  # 4:3, so that the canvas shows when it has taken its size
        im.crop((0, 0, 512, 384)).save(png)
    outside: list[str] = []
    page = _page(browser, server, outside)
    page.get_by_role("tab", name="Edit").click()
    canvas = page.locator("#e-canvas")
    # Gradio's editor must have drawn its canvas before it takes a file: given one earlier it
    # throws ("reading 'reset_layers'") and never shows it. The canvas takes its layout size at
    # once, so what tells that the photo is in is what it shows: a near-white blank
    # (grey-level spread about 12) until the photo is drawn (about 80). Strokes drawn before
    # that land on the square 800 x 800 default canvas, which the editor sends back.
    canvas.locator("canvas").first.wait_for(state="visible", timeout=60_000)

    def shows_photo() -> bool:
        shot = Image.open(io.BytesIO(canvas.locator("canvas").first.screenshot()))
        return float(np.asarray(shot.convert("L"), np.float32).std()) > 40

    for _ in range(3):  # a file given while the editor still initialises is lost: give it again
        canvas.locator("input[type=file]").set_input_files(str(png))
        for _ in range(60):
            if shows_photo():
                break
            page.wait_for_timeout(250)
        else:
            continue
        break
    else:
        pytest.fail("the edit canvas never showed the uploaded photo")
    page.wait_for_timeout(1000)
    canvas.get_by_label("Brush").first.click()
    box = canvas.locator("canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def stroke(x0: float, y0: float, x1: float, y1: float) -> None:
        page.mouse.move(cx + x0, cy + y0)
        page.mouse.down()
        page.mouse.move(cx + x1, cy + y1, steps=12)
        page.mouse.up()

    stroke(-40, -60, 20, -60)  # mask layer (the first)
    canvas.get_by_label("Show Layers").click()
    page.get_by_text("sketch", exact=True).click()
    stroke(-30, -40, 30, -20)
    page.locator("#e-engine input").click()
    page.get_by_role("option", name="classic").click()
    page.locator("#e-run").click()
    data = _download(page, "#e-download")
    page.screenshot(path=str(shots / "serve_edit.png"), full_page=True)
    assert seen["engine"] == "classic" and seen["mask"].any() and seen["sketch"].any()
    before, after, mask = _pixels(png.read_bytes()), _pixels(data), seen["mask"]
    assert after.shape == before.shape and mask.shape == before.shape[:2]
    assert np.array_equal(after[~mask], before[~mask])  # identical outside the stroke
    assert (after[mask] != before[mask]).any(axis=1).mean() > 0.5  # changed inside it
    assert outside == []
