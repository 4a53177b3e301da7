"""A multipart/form-data body read into a private folder, within limits.

The body is streamed and counted: past ``limit`` bytes it is refused
(:class:`~meiyan.serve.jobs.TooLargeError`). Each file part goes to a file of its own, named by
its position (never by the client's file name), in the request's folder; fields stay in memory,
each at most 64 KiB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from meiyan.serve.jobs import TooLargeError, UnprocessableError

MAX_PARTS = 16
MAX_FIELD = 64 * 1024


class BadBodyError(UnprocessableError):
    """The body is not multipart/form-data, or malformed (HTTP 400)."""


@dataclass
class Part:
    name: str
    filename: str | None
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    fd: int | None = None


@dataclass
class Form:
    """The fields (name -> text) and files (name -> (path, client file name)) of a body."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)


class _Reader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.form = Form()
        self.part: Part | None = None
        self.header = b""
        self.value = b""
        self.headers: dict[bytes, bytes] = {}
        self.count = 0

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header.lower()] = self.value
        self.header = self.value = b""

    def on_headers_finished(self) -> None:
        self.count += 1
        if self.count > MAX_PARTS:
            raise UnprocessableError(f"more than {MAX_PARTS} form parts")
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise BadBodyError("a form part has no name")
        if name in self.form.fields or name in self.form.files:
            raise UnprocessableError(f"{name}: given twice")
        filename = options.get(b"filename")
        self.part = Part(name, None if filename is None else filename.decode("utf-8", "replace"))
        if self.part.filename is not None:
            path = self.folder / f"part{self.count}"
            self.part.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.form.files[name] = (path, self.part.filename)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        assert part is not None
        if part.fd is not None:
            os.write(part.fd, data[start:end])
        else:
            part.data += data[start:end]
            if len(part.data) > MAX_FIELD:
                raise UnprocessableError(f"{part.name}: field over {MAX_FIELD // 1024} KiB")

    def on_part_end(self) -> None:
        part = self.part
        if part is not None and part.fd is not None:
            os.close(part.fd)
            part.fd = None
        elif part is not None:
            self.form.fields[part.name] = part.data.decode("utf-8", "replace")
        self.part = None

    def close(self) -> None:
        if self.part is not None and self.part.fd is not None:
            os.close(self.part.fd)


def too_large(limit: int) -> str:
    return f"upload larger than the limit of {limit / 2**20:g} MB"


async def read_form(request: Request, folder: Path, limit: int) -> Form:
    """The form of ``request``, its files in ``folder``; :class:`TooLargeError` past ``limit``.

    A body found wrong is still read (and dropped) up to four times ``limit``, so that the
    client, which sends it all before it reads, gets the answer."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    reader = _Reader(folder)
    failure: Exception | None = None
    if kind != b"multipart/form-data" or b"boundary" not in options:
        failure = BadBodyError("expected multipart/form-data with the photo in the field 'image'")
    else:
        parser = MultipartParser(options[b"boundary"], {
            "on_part_begin": reader.on_part_begin,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
        })
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit and not isinstance(failure, TooLargeError):
                failure = TooLargeError(too_large(limit))
            if seen > 4 * limit:
                break
            if failure is None:
                try:
                    parser.write(chunk)
                except (FormParserError, UnprocessableError) as e:
                    failure = e
        if failure is None:
            parser.finalize()
    except FormParserError as e:
        failure = e
    finally:
        reader.close()
    if isinstance(failure, FormParserError):
        raise BadBodyError("malformed multipart/form-data body")
    if failure is not None:
        raise failure
    return reader.form
