"""The FastAPI app: ``POST /v1/<job>`` (multipart in, the result out), ``GET /healthz``,
OpenAPI at ``/docs``, and the Gradio UI at ``/``.

Bounds: a bearer token when one is set; uploads streamed into a private folder (mode 0700)
that is deleted after the answer, and refused past the byte limit (413) or the pixel limit
(413); at most ``workers`` jobs at once and ``queue`` waiting, then 503; ``timeout`` seconds a
request, then 504 (a job already running finishes in its worker, holding its place, and its
result is dropped). Errors are JSON ``{"error": "one line"}``.
"""

from __future__ import annotations

import asyncio
import hmac
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

import meiyan
from meiyan.cli.batch import default_jobs
from meiyan.errors import ImageError, NoFaceError
from meiyan.io.image import DEFAULT_MAX_PIXELS
from meiyan.serve import jobs, schema
from meiyan.serve.upload import BadBodyError, read_form

WARNING_HEADER = "X-Meiyan-Warning"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeConfig:
    """What ``meiyan serve`` was told; see the module docstring for what each bounds."""

    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    cors: tuple[str, ...] = ()
    workers: int = field(default_factory=default_jobs)
    queue: int | None = None
    timeout: float = 60.0
    max_upload: int = 25 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    ui: bool = True

    @property
    def waiting(self) -> int:
        """Jobs that may wait for a worker (default: four per worker)."""
        return 4 * self.workers if self.queue is None else self.queue


class Busy(Exception):  # noqa: N818 (a state, answered with 503)
    """Every worker is busy and the queue is full."""


class Pool:
    """At most ``workers`` jobs at once, at most ``waiting`` more queued; shared by REST and
    the UI."""

    def __init__(self, workers: int, waiting: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meiyan-job")
        self._cap = workers + waiting
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` on a worker; :class:`Busy` when the queue is full."""
        with self._lock:
            if self._pending >= self._cap:
                raise Busy("busy: every worker is taken and the queue is full; try again later")
            self._pending += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def error(status: int, message: str, **headers: str) -> JSONResponse:
    """The JSON error answer: ``{"error": message}`` on one line."""
    return JSONResponse({"error": " ".join(str(message).split())}, status, headers=headers or None)


def status_of(e: BaseException) -> int:
    """The HTTP status of a job's failure."""
    if isinstance(e, jobs.TooLargeError):
        return 413
    if isinstance(e, BadBodyError | ImageError):
        return 400
    if isinstance(e, jobs.UnprocessableError | NoFaceError | ValueError):
        return 422
    if isinstance(e, Busy):
        return 503
    return 500


def _header(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _openapi(job: str) -> dict:
    """The multipart request body of ``job`` for the OpenAPI document."""
    required, optional = jobs.FILES[job]
    props: dict[str, Any] = {f: {"type": "string", "format": "binary"} for f in
                             (*required, *optional)}
    for model in (schema.JOBS[job], schema.OutputOptions):
        if job in ("mask", "landmarks") and model is schema.OutputOptions:
            continue
        props.update(model.model_json_schema()["properties"])
    body = {"type": "object", "properties": props, "required": list(required)}
    media = {"application/json"} if job == "landmarks" else {"image/*"}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}},
        "responses": {"200": {"description": "the result; warnings in X-Meiyan-Warning",
                              "content": {m: {} for m in media}}},
    }


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The app: REST endpoints, health, docs and (with ``config.ui``) the Gradio UI at ``/``."""
    config = config or ServeConfig()
    pool = Pool(config.workers, config.waiting)
    root = Path(tempfile.mkdtemp(prefix="meiyan-serve-"))  # mode 0700

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import numpy as np

        # Models load once per process, before the first request: the face detector and mesh.
        await asyncio.to_thread(meiyan.analyze, np.zeros((64, 64, 3), np.uint8))
        try:
            yield
        finally:
            pool.close()
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="meiyan", version=meiyan.__version__, lifespan=lifespan,
                  description="AI portrait beautification: the command line's jobs over HTTP.")
    app.state.config, app.state.pool, app.state.uploads = config, pool, root
    app.add_middleware(
        CORSMiddleware, allow_origins=list(config.cors), allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"], expose_headers=[WARNING_HEADER],
    )

    def authorised(request: Request) -> bool:
        if config.token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(),
                                                                  config.token.encode())

    async def answer(job: str, request: Request) -> Response:
        deadline = time.monotonic() + config.timeout
        if not authorised(request):
            return error(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                         **{"WWW-Authenticate": "Bearer"})
        folder = Path(tempfile.mkdtemp(dir=root))
        try:
            form = await read_form(request, folder, config.max_upload)
            required, optional = jobs.FILES[job]
            for name in required:
                if name not in form.files:
                    raise jobs.UnprocessableError(f"{name}: a file is required")
            extra = sorted(set(form.files) - {*required, *optional})
            if extra:
                raise jobs.UnprocessableError(f"unknown file field(s) {extra}")
            fields = dict(form.fields)
            out = schema.OutputOptions.model_validate(
                {k: fields.pop(k) for k in ("format", "quality") if k in fields}
            ) if job not in ("mask", "landmarks") else schema.OutputOptions()
            settings = schema.parse(job, fields)
            files = {k: (path.read_bytes(), name) for k, (path, name) in form.files.items()}
            future = pool.submit(jobs.run, job, settings, out, files, config.max_pixels)
            try:
                reply = await asyncio.wait_for(asyncio.wrap_future(future),
                                               max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                future.cancel()
                return error(504, f"timed out after {config.timeout:g} s")
        except ValidationError as e:
            return error(422, schema.problem(e))
        except Exception as e:  # every failure answers one line with its status
            status = status_of(e)
            message = str(e) if status != 500 else f"internal error: {type(e).__name__}: {e}"
            return error(status, message)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        response = Response(reply.body, media_type=reply.media_type)
        for text in reply.warnings:
            response.headers.append(WARNING_HEADER, _header(text))
        return response

    def route(job: str) -> None:
        async def endpoint(request: Request) -> Response:
            return await answer(job, request)

        endpoint.__doc__ = schema.JOBS[job].__doc__
        app.post(f"/v1/{job}", name=job, summary=f"meiyan {job}", openapi_extra=_openapi(job),
                 response_class=Response)(endpoint)

    for job in jobs.FILES:
        route(job)

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness and load: the version, jobs running or queued, and the worker count."""
        return {"status": "ok", "version": meiyan.__version__, "pending": pool.pending,
                "workers": config.workers}

    if config.ui:
        from meiyan.serve.ui import mount

        mount(app, config, pool)
    return app
