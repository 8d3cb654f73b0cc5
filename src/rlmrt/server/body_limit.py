"""A cap on request bodies (`[server] max_request_bytes`): a body declared larger is
refused before it is read, one that grows larger while read is cut off; both with a
413 and OpenAI's error body. Uploads to /v1/files have their own cap (`uploads`)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rlmrt.server.api_errors import APIError


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than this server takes ({limit:,} bytes:"
        " server.max_request_bytes)"
    )


class BodyLimit:
    """ASGI middleware: request bodies of at most `limit` bytes, except the requests
    `exempt` names."""

    def __init__(self, app: ASGIApp, limit: int, exempt: Callable[[Scope], bool]) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = APIError(413, _too_large(self.limit), code="request_too_large").response()
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, limited, send)


def is_upload(scope: Scope) -> bool:
    """A file upload (`POST /v1/files`): capped by `max_upload_bytes` instead."""
    return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == "/v1/files"
