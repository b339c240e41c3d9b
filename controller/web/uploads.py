"""Reading a ``multipart/form-data`` upload straight to a file, never whole in memory.

The request body streams through python-multipart's parser: the ``file``
part's bytes go to a file in the folder given, other fields (small, at most
:data:`MAX_FIELD` bytes each) are kept as text. The body's size is counted
against the route's limit as it arrives.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, BinaryIO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from controller.errors import InvalidRequest, _t
from controller.web.gate import BodyTooLarge

MAX_FIELD = 4096
MAX_PARTS = 8


@dataclasses.dataclass
class Upload:
    path: pathlib.Path
    filename: str | None
    fields: dict[str, str]
    size: int


class _Parts:
    """python-multipart callbacks: where each part's headers and data go."""

    def __init__(self, target: pathlib.Path):
        self.target = target
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file: BinaryIO | None = None
        self.size = 0
        self.parts = 0
        self._header_field = b""
        self._header_value = b""
        self._name: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_part_data": self.part_data, "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidRequest(_t("the upload has more than {most} parts"), most=MAX_PARTS)
        self._name, self._value = None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            self._name = options.get(b"name", b"").decode("utf-8", "replace")
            if self._name == "file":
                raw = options.get(b"filename")
                self.filename = os.path.basename(raw.decode("utf-8", "replace")) if raw else None
                if self.file is not None:
                    raise InvalidRequest(_t("the upload has more than one 'file' part"))
                self.file = open(self.target, "wb")  # noqa: SIM115 - closed by read_upload
        self._header_field, self._header_value = b"", b""

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "file" and self.file is not None:
            self.file.write(data[start:end])
            self.size += end - start
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD:
            raise InvalidRequest(_t("form field {name!r} is over {most} bytes"), name=self._name,
                                 most=MAX_FIELD)

    def part_end(self) -> None:
        if self._name and self._name != "file":
            self.fields[self._name] = self._value.decode("utf-8", "replace")


async def read_upload(request: Request, folder: str | os.PathLike[str], limit: int) -> Upload:
    """Stream the request's multipart body; the ``file`` part lands in ``folder``."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(_t("upload audio as multipart/form-data with a 'file' part and a "
                                "'title' field"))
    parts = _Parts(pathlib.Path(folder) / "upload")
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(limit)
            parser.write(chunk)
        parser.finalize()
    finally:
        if parts.file is not None:
            parts.file.close()
    if parts.file is None:
        raise InvalidRequest(_t("the upload has no 'file' part"))
    return Upload(parts.target, parts.filename, parts.fields, parts.size)
