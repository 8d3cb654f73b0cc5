"""Who is calling: every /v1 route needs `Authorization: Bearer <key>` of a tenant.

There is no anonymous mode. A missing, unknown, revoked or expired key is a 401 with
OpenAI's `invalid_api_key` code; the message never repeats the key.
"""

from __future__ import annotations

from fastapi import Request

from rlmrt.server.api_errors import APIError
from rlmrt.server.models import ApiKey
from rlmrt.server.state import server_state


def _rejected(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> ApiKey:
    """The FastAPI dependency of /v1 routes: the caller's stored key."""
    header = request.headers.get("authorization")
    if not header:
        raise _rejected(
            "no API key: send it as 'Authorization: Bearer <key>' (rlm keys create makes one)"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _rejected("the Authorization header must be 'Bearer <key>'")
    key = await server_state(request).store.find_key(token)
    if key is None:
        raise _rejected("the API key is not valid")
    state = key.state()
    if state != "active":
        raise _rejected(
            f"the API key {key.prefix}... was revoked"
            if state == "revoked"
            else f"the API key {key.prefix}... expired"
        )
    return key
