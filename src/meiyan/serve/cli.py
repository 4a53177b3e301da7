"""``meiyan serve``: the REST API and the browser UI on one local server."""

from __future__ import annotations

import os
import sys

import click

from meiyan.cli.batch import default_jobs


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option("--token", envvar="MEIYAN_TOKEN", show_envvar=True,
              help="Bearer token required by the API (and the UI's password).")
@click.option("--cors", multiple=True, metavar="ORIGIN",
              help="Allow this browser origin (repeat); CORS is off by default.")
@click.option("--workers", type=click.IntRange(min=1), default=default_jobs(),
              show_default="the CPU count", help="Jobs run at once.")
@click.option("--queue", type=click.IntRange(min=0), help="Jobs that may wait [4 per worker].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds a request may take (then 504).")
@click.option("--max-upload", type=click.FloatRange(min=0, min_open=True), default=25.0,
              show_default=True, help="Largest upload, MB (then 413).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=100_000_000, show_default=True,
              help="Largest image in pixels (then 413).")
def serve(host: str, port: int, token: str | None, cors: tuple[str, ...], workers: int,
          queue: int | None, timeout: float, max_upload: float, max_pixels: int) -> None:
    """Serve the REST API (/v1/..., docs at /docs) and the browser UI (/) on HOST:PORT."""
    from meiyan.serve.app import LOOPBACK

    if host not in LOOPBACK and not token:
        click.echo(f"meiyan: error: --host {host} is not a loopback address: give --token or "
                   "set MEIYAN_TOKEN", err=True)
        sys.exit(2)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import uvicorn

        from meiyan.serve.app import ServeConfig, create_app
    except ImportError as e:
        click.echo(f"meiyan: error: serve needs the web extra (pip install 'meiyan[web]'): {e}",
                   err=True)
        sys.exit(1)
    config = ServeConfig(host, port, token or None, cors, workers, queue, timeout,
                         round(max_upload * 2**20), max_pixels)
    click.echo(f"meiyan: serving on http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
