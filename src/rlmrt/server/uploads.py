"""A multipart upload (`POST /v1/files`, as OpenAI's files API takes it) streamed to
disk: the part `file` goes to its destination as it arrives, hashed and counted, never
whole in memory; over the size limit the upload is refused (413) and its partial file
removed. The small fields (`purpose`) are kept in memory, up to `FIELD_BYTES` each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from rlmrt.server.api_errors import APIError

FIELD_BYTES = 64 << 10
FILE_FIELD = "file"


@dataclass(slots=True)
class Upload:
    """What was received: the file's name, size and SHA-256, and the other fields."""

    filename: str | None = None
    size: int = 0
    sha256: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"the file is larger than this server takes ({limit:,} bytes: server.max_upload_bytes)",
        param=FILE_FIELD,
        code="file_too_large",
    )


class _Receiver:
    """The parser's callbacks: which part is being read, and its bytes so far."""

    def __init__(self, out: IO[bytes], max_bytes: int) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.upload = Upload()
        self.digest = hashlib.sha256()
        self.pending: list[bytes] = []  # file bytes parsed from the last chunk, to write
        self.file_ended = False  # its closing boundary came: the file is whole
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._is_file = b"", None, False
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise APIError(400, "a multipart part has no name in its Content-Disposition")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self.upload.filename is not None:
                raise APIError(400, "send one file per upload", param=FILE_FIELD)
            self._is_file = True
            raw = options.get(b"filename", b"") or b"upload"
            self.upload.filename = _base_name(raw.decode("utf-8", "replace"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._is_file:
            self.upload.size += len(piece)
            if self.upload.size > self.max_bytes:
                raise too_large(self.max_bytes)
            self.digest.update(piece)
            self.pending.append(piece)
            return
        if len(self._value) + len(piece) > FIELD_BYTES:
            raise APIError(400, f"the field {self._name!r} is too long", param=self._name)
        self._value.extend(piece)

    def on_part_end(self) -> None:
        if self._is_file:
            self.file_ended = True
        elif self._name is not None:
            self.upload.fields[self._name] = self._value.decode("utf-8", "replace")


async def receive_upload(
    content_type: str, body: AsyncIterator[bytes], destination: Path, max_bytes: int
) -> Upload:
    """Parse the multipart `body`; its `file` part is written to `destination` (the
    owner's only). On any failure (a bad body, over `max_bytes`, the client gone) the
    destination is removed and the error raised."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise APIError(400, "send the file as multipart/form-data (fields 'file' and 'purpose')")
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        try:
            receiver = _Receiver(out, max_bytes)
            parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": receiver.on_part_begin,
                    "on_part_data": receiver.on_part_data,
                    "on_part_end": receiver.on_part_end,
                    "on_header_field": receiver.on_header_field,
                    "on_header_value": receiver.on_header_value,
                    "on_header_end": receiver.on_header_end,
                    "on_headers_finished": receiver.on_headers_finished,
                },
            )
            async for chunk in body:
                parser.write(chunk)
                if receiver.pending:
                    data = b"".join(receiver.pending)
                    receiver.pending.clear()
                    await anyio.to_thread.run_sync(out.write, data)
            parser.finalize()
        except MultipartParseError as exc:
            await anyio.Path(destination).unlink(missing_ok=True)
            raise APIError(400, f"the multipart body is not valid: {exc}") from exc
        except BaseException:
            await anyio.Path(destination).unlink(missing_ok=True)
            raise
    upload = receiver.upload
    missing = (
        "no file: send it as the multipart field 'file'"
        if upload.filename is None
        else "the body ended before the file did (no closing boundary)"
        if not receiver.file_ended
        else None
    )
    if missing is not None:
        await anyio.Path(destination).unlink(missing_ok=True)
        raise APIError(400, missing, param=FILE_FIELD)
    upload.sha256 = receiver.digest.hexdigest()
    return upload


def _base_name(name: str) -> str:
    """The last part of a client's file name (no folders), at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    return base[:255]
