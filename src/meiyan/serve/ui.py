"""The browser UI: Gradio Blocks mounted at ``/`` of the FastAPI app (as rembg does).

Tabs: beautify (a slider per strength, presets, a skin-mask overlay, before/after compare),
makeup (the looks, a reference upload, a shade per region) and edit (one canvas with three
layers: ``mask`` to paint what to erase and refill, ``sketch`` for lines, ``colour`` for colour
strokes with a picker; brush size, eraser, undo; Fill runs it). Every job goes through the
server's worker pool and settings schema, like a REST request. Offline: Gradio's own fonts and
scripts only, no analytics, no share links, no run history.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from meiyan.io.image import LoadedImage
from meiyan.serve import jobs, schema

STRENGTH_HELP = {
    "smooth": "Skin smoothing", "tone": "Even tone", "blemish": "Blemish removal",
    "whiten": "Whitening", "detail": "Lighten dark lines", "texture": "Texture kept",
}
OVERLAY = np.array([255, 0, 160], np.float32)  # the skin overlay's tint


def mount(app: Any, config: Any, pool: Any) -> None:
    """Build the UI and mount it at ``/`` of ``app`` (last: it answers every other path)."""
    folder = Path(app.state.uploads) / "ui"
    folder.mkdir(mode=0o700)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # Gradio's uploads and results, private
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    blocks = build(pool, config, folder)
    blocks.queue(default_concurrency_limit=config.workers, max_size=config.waiting)
    auth = None
    if config.token:
        import hmac

        def auth(user: str, password: str) -> bool:
            return hmac.compare_digest(password.encode(), config.token.encode())

    gr.mount_gradio_app(app, blocks, path="/", auth=auth, footer_links=[], ssr_mode=False,
                        run_history=False, mcp_server=False, pwa=False,
                        max_file_size=config.max_upload, enable_monitoring=False)


def _run(pool: Any, config: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the server's pool within its timeout; failures as one-line errors."""
    import gradio as gr

    from meiyan.serve.app import Busy

    try:
        return pool.submit(fn, *args).result(timeout=config.timeout)
    except TimeoutError:
        raise gr.Error(f"timed out after {config.timeout:g} s") from None
    except (Busy, ValueError, jobs.MeiyanError) as e:
        raise gr.Error(" ".join(str(e).split())) from None


def _read(path: str | None, config: Any, what: str = "photo") -> LoadedImage:
    import gradio as gr

    if not path:
        raise gr.Error(f"upload a {what} first")
    try:
        return jobs.decode(Path(path).read_bytes(), what, config.max_pixels)
    except jobs.MeiyanError as e:
        raise gr.Error(" ".join(str(e).split())) from None


def _save(pixels: np.ndarray, img: LoadedImage, folder: Path, stem: str) -> str:
    """The result encoded like ``img`` in a file of its own, for download."""
    data, media = jobs.encode(pixels, img, schema.OutputOptions())
    suffix = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
              "image/tiff": ".tif", "image/bmp": ".bmp"}[media]
    out = Path(tempfile.mkdtemp(dir=folder)) / f"{stem}{suffix}"
    out.write_bytes(data)
    return str(out)


def _view(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels for display."""
    return pixels if pixels.dtype == np.uint8 else (pixels >> 8).astype(np.uint8)


def build(pool: Any, config: Any, folder: Path) -> Any:
    """The Blocks of the three tabs."""
    import gradio as gr

    from meiyan.makeup.looks import look_names
    from meiyan.makeup.regions import REGION_NAMES
    from meiyan.retouch.beautify import FRECKLE_MODES, PRESETS

    natural = schema.BeautifyJob().strengths()
    with gr.Blocks(title="meiyan", analytics_enabled=False, delete_cache=(600, 3600)) as blocks:
        gr.Markdown("# meiyan\nPortrait retouching, makeup and face editing, on this machine.")
        with gr.Tabs():
            with gr.Tab("Beautify", id="beautify"), gr.Row():
                with gr.Column():
                    b_photo = gr.Image(label="Photo", type="filepath", image_mode=None,
                                       sources=["upload", "clipboard"], elem_id="b-photo")
                    b_preset = gr.Radio(sorted(PRESETS), value="natural", label="Preset")
                    sliders = {
                        name: gr.Slider(0, 1, value=natural[name], step=0.05, label=label,
                                        elem_id=f"b-{name}")
                        for name, label in STRENGTH_HELP.items()
                    }
                    b_freckles = gr.Radio(list(FRECKLE_MODES), value="keep", label="Freckles")
                    b_moles = gr.Checkbox(False, label="Remove moles")
                    b_overlay = gr.Checkbox(False, label="Show the skin mask",
                                            elem_id="b-overlay")
                    b_run = gr.Button("Beautify", variant="primary", elem_id="b-run")
                with gr.Column():
                    b_compare = gr.ImageSlider(label="Before / after", format="png",
                                               elem_id="b-compare")
                    b_file = gr.File(label="Download", elem_id="b-download")

            with gr.Tab("Makeup", id="makeup"), gr.Row():
                with gr.Column():
                    m_photo = gr.Image(label="Photo", type="filepath", image_mode=None,
                                       sources=["upload", "clipboard"], elem_id="m-photo")
                    m_look = gr.Dropdown([*look_names(), "reference photo"],
                                         value=look_names()[0], label="Look")
                    m_ref = gr.Image(label="Reference photo (a made-up face)",
                                     type="filepath", image_mode=None, elem_id="m-ref")
                    m_regions = gr.CheckboxGroup(list(REGION_NAMES), value=list(REGION_NAMES),
                                                 label="Regions")
                    shades = [gr.Slider(0, 1, value=1, step=0.05, label=f"Shade: {r}")
                              for r in REGION_NAMES]
                    m_run = gr.Button("Make up", variant="primary", elem_id="m-run")
                with gr.Column():
                    m_compare = gr.ImageSlider(label="Before / after", format="png")
                    m_file = gr.File(label="Download", elem_id="m-download")

            with gr.Tab("Edit", id="edit"), gr.Row():
                with gr.Column():
                    e_canvas = gr.ImageEditor(
                        label="Paint on the layers: mask (what to refill), sketch (lines), "
                              "colour", type="numpy", image_mode="RGBA", format="png",
                        sources=["upload", "clipboard"], transforms=(),
                        layers=gr.LayerOptions(layers=["mask", "sketch", "colour"],
                                               allow_additional_layers=False),
                        brush=gr.Brush(colors=["#ffffff", "#000000", "#c83232", "#3264c8"],
                                       default_color="#ffffff", color_mode="defaults"),
                        eraser=gr.Eraser(), elem_id="e-canvas")
                    with gr.Row():
                        e_engine = gr.Dropdown(_edit_engines(), value="auto", label="Engine",
                                               elem_id="e-engine")
                        e_seed = gr.Number(0, precision=0, label="Seed")
                    e_run = gr.Button("Fill", variant="primary", elem_id="e-run")
                with gr.Column():
                    e_compare = gr.ImageSlider(label="Before / after", format="png")
                    e_file = gr.File(label="Download", elem_id="e-download")

        def preset(name: str) -> list[Any]:
            values = schema.BeautifyJob(preset=name).strengths()
            return [gr.update(value=values[k]) for k in sliders]

        def beautify(path: str | None, name: str, *values: Any,
                     progress: gr.Progress = gr.Progress()) -> tuple[Any, str]:  # noqa: B008
            *strengths, freckles, moles, overlay = values
            progress(0.1, desc="reading")
            img = _read(path, config)
            settings = _parse("beautify", {"preset": name, **dict(zip(sliders, strengths,
                              strict=True)), "freckles": freckles, "moles": moles})
            progress(0.3, desc="retouching")
            pixels, result = _run(pool, config, jobs.beautify, img, settings)
            shown = _view(pixels)
            if overlay:
                m = result.skin_mask()[..., None] * 0.5
                shown = np.rint(shown * (1 - m) + OVERLAY * m).astype(np.uint8)
            progress(0.9, desc="encoding")
            return (_view(img.pixels), shown), _save(pixels, img, folder, "beautified")

        def makeup(path: str | None, look: str, ref: str | None, regions: list[str],
                   *values: float, progress: gr.Progress = gr.Progress()) -> tuple[Any, str]:  # noqa: B008
            img = _read(path, config)
            reference = _read(ref, config, "reference") if look == "reference photo" else None
            shade = {r: v for r, v in zip(REGION_NAMES, values, strict=True) if r in regions}
            settings = _parse("makeup", {"look": None if reference else look,
                                         "regions": regions, "shade": shade})
            progress(0.3, desc="making up")
            pixels = _run(pool, config, jobs.makeup, img, settings, reference)
            return (_view(img.pixels), _view(pixels)), _save(pixels, img, folder, "madeup")

        def edit(value: dict | None, engine: str, seed: float,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, str]:  # noqa: B008
            if not value or value.get("background") is None:
                raise gr.Error("upload a photo first")
            img, guides = _canvas(value)
            settings = _parse("edit", {"engine": engine, "seed": int(seed or 0)})
            progress(0.3, desc="filling")
            pixels = _run(pool, config, jobs.edit, img, settings, *guides)
            return (_view(img.pixels), _view(pixels)), _save(pixels, img, folder, "edited")

        b_preset.change(preset, b_preset, list(sliders.values()))
        b_run.click(beautify, [b_photo, b_preset, *sliders.values(), b_freckles, b_moles,
                               b_overlay], [b_compare, b_file])
        m_run.click(makeup, [m_photo, m_look, m_ref, m_regions, *shades], [m_compare, m_file])
        e_run.click(edit, [e_canvas, e_engine, e_seed], [e_compare, e_file])
    return blocks


def _edit_engines() -> list[str]:
    from meiyan.edit.api import SLOT

    return SLOT.choices()


def _parse(job: str, values: dict[str, Any]) -> schema.JobSettings:
    import gradio as gr

    try:
        return schema.parse(job, values)
    except ValueError as e:
        raise gr.Error(str(e)) from None


def _canvas(value: dict) -> tuple[LoadedImage, list[LoadedImage]]:
    """The photo and the mask, sketch and colour guides from the editor's layers. What was
    erased from the photo itself joins the mask."""
    background = np.asarray(value["background"])
    rgb = np.ascontiguousarray(background[..., :3])
    h, w = rgb.shape[:2]
    blank = np.zeros((h, w, 4), np.uint8)
    layers = [np.asarray(layer) for layer in value.get("layers") or []]
    layers = [la if la.shape == (h, w, 4) else blank for la in layers[:3]]
    layers += [blank] * (3 - len(layers))
    alpha = [la[..., 3] for la in layers]
    if background.shape[2] == 4:
        alpha[0] = np.maximum(alpha[0], 255 - background[..., 3])
    white = np.full((h, w, 3), 255, np.uint8)
    img = LoadedImage(rgb, None, None, "PNG", None, None, False)
    mask = LoadedImage(white, alpha[0], None, "PNG", None, None, False)
    sketch = LoadedImage(np.where(alpha[1][..., None] > 127, white, 0).astype(np.uint8), None,
                         None, "PNG", None, None, False)
    colour = LoadedImage(np.ascontiguousarray(layers[2][..., :3]), alpha[2], None, "PNG", None,
                         None, False)
    return img, [mask, sketch, colour]


__all__ = ["build", "mount"]
