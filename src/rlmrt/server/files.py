"""`/v1/files`: a tenant's large contexts, uploaded once (as OpenAI's files API takes
them) and named by id in `context_files` of a completion or a run.

A file's bytes live in `[server] files_dir` under its id, its record (name, purpose,
size, SHA-256, tenant) in the database. Ids are "file-" and 128 random bits; a file of
another tenant is answered exactly like one that does not exist (404). Uploads and
deletions are audited (id, size, checksum: never the content).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import delete, select

from rlmrt.server.api_errors import APIError
from rlmrt.server.auth import Reader, Writer
from rlmrt.server.models import StoredFile, utc_now
from rlmrt.server.responses import (
    FILE_CONTENT_RESPONSES,
    FILE_DELETE_RESPONSES,
    FILE_RESPONSES,
    FILES_RESPONSES,
    UPLOAD_RESPONSES,
)
from rlmrt.server.state import ServerState, client_address, server_state
from rlmrt.server.uploads import receive_upload, too_large

files = APIRouter(prefix="/v1/files")
FILE_ID = re.compile(r"file-[0-9a-f]{32}")
# OpenAI's purposes: its API refuses others, and so does this server (a multipart field
# is text, so only a closed set tells a purpose from a stray value such as "null")
PURPOSES = ("assistants", "batch", "evals", "fine-tune", "user_data", "vision")
MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(PURPOSES)},
                    },
                }
            }
        },
    }
}


def new_file_id() -> str:
    return f"file-{secrets.token_hex(16)}"


def file_body(record: StoredFile) -> dict[str, Any]:
    """A file as OpenAI describes one, with its SHA-256."""
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at.timestamp()),
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
        "sha256": record.sha256,
    }


def file_path(state: ServerState, file_id: str) -> Path:
    return state.settings.files_dir / file_id


async def owned_file(state: ServerState, tenant_id: str, file_id: str) -> StoredFile:
    """The tenant's file `file_id`, or a 404 (whether it does not exist or is another
    tenant's)."""
    record = None
    if FILE_ID.fullmatch(file_id):
        async with state.store.sessions() as session:
            record = await session.scalar(
                select(StoredFile).where(
                    StoredFile.id == file_id, StoredFile.tenant_id == tenant_id
                )
            )
    if record is None:
        raise APIError(404, f"no file {file_id!r}", param="file_id", code="file_not_found")
    return record


async def context_files(
    state: ServerState, tenant_id: str, ids: Sequence[str]
) -> list[tuple[str, Path]]:
    """The names and paths of the tenant's files `ids` (a 404 names the first missing)."""
    found: list[tuple[str, Path]] = []
    for file_id in ids:
        try:
            record = await owned_file(state, tenant_id, file_id)
        except APIError as exc:
            exc.param = "context_files"
            raise
        found.append((record.filename, file_path(state, record.id)))
    return found


@files.post("", response_model=None, responses=UPLOAD_RESPONSES, openapi_extra=MULTIPART_BODY)
async def upload_file(request: Request, caller: Writer) -> dict[str, Any]:
    """Upload a file (multipart: `file` and `purpose`), streamed to disk."""
    state = server_state(request)
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + (64 << 10):  # the file and its fields
        raise too_large(limit)
    file_id = new_file_id()
    path = file_path(state, file_id)
    upload = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), path, limit
    )
    try:
        purpose = upload.fields.get("purpose", "")
        if purpose not in PURPOSES:
            raise APIError(
                400,
                f"purpose: give the file's purpose, one of {', '.join(PURPOSES)}"
                " (e.g. 'user_data')",
                param="purpose",
            )
        record = StoredFile(
            id=file_id,
            tenant_id=caller.tenant_id,
            key_id=caller.key_id,
            subject=caller.subject,
            filename=upload.filename or "upload",
            purpose=purpose,
            bytes=upload.size,
            sha256=upload.sha256,
            created_at=utc_now(),
        )
        async with state.store.sessions.begin() as session:
            session.add(record)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    await state.store.audit(
        "file.upload",
        actor=caller.actor,
        tenant_id=caller.tenant_id,
        target=file_id,
        client=client_address(request),
        detail={"bytes": upload.size, "sha256": upload.sha256, "purpose": purpose},
    )
    return file_body(record)


@files.get("", response_model=None, responses=FILES_RESPONSES)
async def list_files(request: Request, caller: Reader) -> dict[str, Any]:
    """The caller's tenant's files, newest first."""
    state = server_state(request)
    async with state.store.sessions() as session:
        found = await session.scalars(
            select(StoredFile)
            .where(StoredFile.tenant_id == caller.tenant_id)
            .order_by(StoredFile.created_at.desc())
        )
        data = [file_body(record) for record in found]
    return {"object": "list", "data": data, "has_more": False}


@files.get("/{file_id}", response_model=None, responses=FILE_RESPONSES)
async def get_file(file_id: str, request: Request, caller: Reader) -> dict[str, Any]:
    return file_body(await owned_file(server_state(request), caller.tenant_id, file_id))


@files.get("/{file_id}/content", response_model=None, responses=FILE_CONTENT_RESPONSES)
async def get_file_content(file_id: str, request: Request, caller: Reader) -> FileResponse:
    """The file's bytes, as uploaded."""
    state = server_state(request)
    record = await owned_file(state, caller.tenant_id, file_id)
    return FileResponse(
        file_path(state, record.id),
        media_type="application/octet-stream",
        filename=record.filename,
    )


@files.delete("/{file_id}", response_model=None, responses=FILE_DELETE_RESPONSES)
async def delete_file(file_id: str, request: Request, caller: Writer) -> dict[str, Any]:
    state = server_state(request)
    record = await owned_file(state, caller.tenant_id, file_id)
    async with state.store.sessions.begin() as session:
        await session.execute(delete(StoredFile).where(StoredFile.id == record.id))
    file_path(state, record.id).unlink(missing_ok=True)
    await state.store.audit(
        "file.delete",
        actor=caller.actor,
        tenant_id=caller.tenant_id,
        target=record.id,
        client=client_address(request),
        detail={"bytes": record.bytes, "sha256": record.sha256},
    )
    return {"id": record.id, "object": "file", "deleted": True}
