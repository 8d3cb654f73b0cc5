"""Errors as OpenAI sends them: `{"error": {"message", "type", "param", "code"}}` with
the matching status, for every failure of every route (FastAPI's own included).

Messages say what the caller can act on; a failure inside the server is logged with
its traceback and answered with a 500 that names only the request id, never the
exception's text (it may hold paths, settings or a provider's reply).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("rlmrt.server")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class APIError(Exception):
    """An answer with an OpenAI error body; raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or _TYPES.get(status, "api_error")
        self.headers = headers
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def internal_error(exc: BaseException, what: str = "the server failed") -> APIError:
    """A 500 with an id to find the logged traceback of `exc` by."""
    request_id = secrets.token_hex(6)
    log.error("%s (request %s)", what, request_id, exc_info=exc)
    return APIError(
        500,
        f"{what}; the server's log has the details (request {request_id})",
        type_="server_error",
        code="internal_error",
    )


def _param(loc: tuple[int | str, ...]) -> str | None:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or None


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return exc.response()


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request body"}
    param = _param(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid request body")).removeprefix("Value error, ")
    if param:
        message = f"{param}: {message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return APIError(400, message, param=param, code="invalid_request").response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    where = f"{request.method} {request.url.path}"
    status = exc.status_code
    if status == 404:
        error = APIError(404, f"no such route: {where}", code="not_found")
    elif status == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        error = APIError(
            405, f"method not allowed: {where}", code="method_not_allowed", headers=headers
        )
    else:
        error = APIError(status, str(exc.detail), headers=headers)
    return error.response()


def _allowed_methods(request: Request) -> str:
    """The methods some route of the request's path takes: Starlette's 405 names only the
    first route's (`GET` of `/v1/files/{file_id}`, not its `DELETE` declared apart)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    return internal_error(exc).response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
