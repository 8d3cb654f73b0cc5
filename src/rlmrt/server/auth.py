"""Who is calling: every /v1 route needs `Authorization: Bearer <key>` of a tenant.

There is no anonymous mode. A missing, unknown, revoked or expired key is a 401 with
OpenAI's `invalid_api_key` code, and an "auth.fail" record of the audit log; neither
the message nor the record holds the key (the record: its visible prefix when it looks
like one of ours).
"""

from __future__ import annotations

from fastapi import Request

from rlmrt.server.api_errors import APIError
from rlmrt.server.keys import key_prefix, looks_like_key
from rlmrt.server.models import ApiKey
from rlmrt.server.state import client_address, server_state


async def _rejected(
    request: Request, message: str, reason: str, key: ApiKey | None = None, token: str = ""
) -> APIError:
    """The 401 of a failed authentication, audited."""
    prefix = key.prefix if key else key_prefix(token) if looks_like_key(token) else "-"
    await server_state(request).store.audit(
        "auth.fail",
        actor=prefix,
        tenant_id=key.tenant_id if key else None,
        client=client_address(request),
        detail={"reason": reason, "path": request.url.path},
    )
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> ApiKey:
    """The FastAPI dependency of /v1 routes: the caller's stored key."""
    header = request.headers.get("authorization")
    if not header:
        raise await _rejected(
            request,
            "no API key: send it as 'Authorization: Bearer <key>' (rlm keys create makes one)",
            "no key",
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise await _rejected(
            request, "the Authorization header must be 'Bearer <key>'", "not bearer", token=token
        )
    key = await server_state(request).store.find_key(token)
    if key is None:
        raise await _rejected(request, "the API key is not valid", "unknown key", token=token)
    state = key.state()
    if state != "active":
        raise await _rejected(
            request,
            f"the API key {key.prefix}... was revoked"
            if state == "revoked"
            else f"the API key {key.prefix}... expired",
            f"{state} key",
            key,
        )
    return key
