"""Who is calling: every /v1 route needs `Authorization: Bearer <credential>`, an API key
of a tenant (`rlm-...`) or, when `[server] jwt_jwks_url` is set, an OIDC/JWT bearer
token naming a tenant (see `tokens`).

There is no anonymous mode. A missing, unknown, revoked or expired key, or a refused
token, is a 401 with OpenAI's `invalid_api_key` code, and an "auth.fail" record of the
audit log; neither the message nor the record holds the credential (the record: a
key's visible prefix when it looks like one of ours, a token's reason of refusal).
A token without the scope a route needs is a 403 (`insufficient_scope`), audited as
"auth.denied"; API keys have every scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request

from rlmrt.errors import UsageError
from rlmrt.server.api_errors import APIError
from rlmrt.server.keys import key_prefix, looks_like_key
from rlmrt.server.models import ApiKey, Tenant
from rlmrt.server.state import client_address, server_state
from rlmrt.server.tokens import READ, WRITE, TokenRefused, looks_like_jwt

ACTOR_CHARS = 40  # the audit log's actor column


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: one API key, or one token subject, of a tenant (as read
    when the caller was: its limits are those of that moment)."""

    tenant: Tenant
    actor: str  # the audit log's "who": a key's visible prefix, or "jwt:<subject>"
    limit_id: str  # whose own rate limits: the key's id, or "jwt:<subject>"
    limit_name: str  # those limits in messages: "key rlm-Ab3dE9xQ...", "token subject x"
    key_id: str | None = None  # None: a token
    subject: str | None = None  # a token's `sub`; None: a key
    scopes: frozenset[str] | None = None  # None: every scope (an API key)
    daily_usd: float | None = None  # the key's own USD per day (None: the [server] default)

    @property
    def tenant_id(self) -> str:
        return self.tenant.id

    @classmethod
    def of_key(cls, key: ApiKey, tenant: Tenant) -> Caller:
        """The caller of `key`, of `tenant` (`Store.find_key` reads both at once)."""
        return cls(
            tenant=tenant,
            actor=key.prefix,
            limit_id=key.id,
            limit_name=f"key {key.prefix}...",
            key_id=key.id,
            daily_usd=key.daily_usd,
        )

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


async def _rejected(
    request: Request,
    message: str,
    reason: str,
    *,
    actor: str = "-",
    tenant_id: str | None = None,
    status: int = 401,
) -> APIError:
    """The 401 (or 503: the token's keys are out of reach) of a failed authentication,
    audited."""
    await server_state(request).store.audit(
        "auth.fail",
        actor=actor,
        tenant_id=tenant_id,
        client=client_address(request),
        detail={"reason": reason, "path": request.url.path},
    )
    if status != 401:
        return APIError(status, message, code="jwks_unavailable")
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Caller:
    """The FastAPI dependency of /v1 routes: who is calling."""
    header = request.headers.get("authorization")
    if not header:
        raise await _rejected(
            request,
            "no API key: send it as 'Authorization: Bearer <key>' (rlm keys create makes one)",
            "no key",
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    prefix = key_prefix(token) if looks_like_key(token) else "-"
    if scheme.lower() != "bearer" or not token:
        raise await _rejected(
            request, "the Authorization header must be 'Bearer <key>'", "not bearer", actor=prefix
        )
    if not looks_like_key(token) and looks_like_jwt(token):
        return await _token_caller(request, token)
    found = await server_state(request).store.find_key(token)
    if found is None:
        raise await _rejected(request, "the API key is not valid", "unknown key", actor=prefix)
    key, tenant = found
    state = key.state()
    if state != "active":
        raise await _rejected(
            request,
            f"the API key {key.prefix}... was revoked"
            if state == "revoked"
            else f"the API key {key.prefix}... expired",
            f"{state} key",
            actor=key.prefix,
            tenant_id=key.tenant_id,
        )
    return Caller.of_key(key, tenant)


async def _token_caller(request: Request, token: str) -> Caller:
    """The caller a bearer token names, when it verifies and its tenant exists."""
    state = server_state(request)
    if state.tokens is None:
        raise await _rejected(
            request,
            "this server does not accept JWT bearer tokens: use an API key",
            "jwt not enabled",
        )
    try:
        verified = await anyio.to_thread.run_sync(state.tokens.verify, token)
    except TokenRefused as exc:
        raise await _rejected(request, str(exc), exc.reason, status=exc.status) from None
    actor = f"jwt:{verified.subject}"[:ACTOR_CHARS]
    try:
        tenant = await state.store.tenant(verified.tenant)
    except UsageError:
        raise await _rejected(
            request,
            "the bearer token names no tenant of this server",
            "unknown tenant",
            actor=actor,
        ) from None
    return Caller(
        tenant=tenant,
        actor=actor,
        limit_id=f"jwt:{verified.subject}",
        limit_name=f"token subject {verified.subject!r}",
        subject=verified.subject,
        scopes=verified.scopes,
    )


def scoped(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """The dependency of a route that needs `scope`: the caller, or a 403."""

    async def caller_with_scope(request: Request) -> Caller:
        caller = await authenticate(request)
        if not caller.allows(scope):
            await server_state(request).store.audit(
                "auth.denied",
                actor=caller.actor,
                tenant_id=caller.tenant_id,
                client=client_address(request),
                detail={"reason": f"no scope {scope}", "path": request.url.path},
            )
            raise APIError(
                403,
                f"the bearer token lacks the scope {scope!r} this request needs",
                code="insufficient_scope",
            )
        return caller

    return caller_with_scope


# the caller of a route that reads (`runs:read`) or writes (`runs:write`)
Reader = Annotated[Caller, Depends(scoped(READ))]
Writer = Annotated[Caller, Depends(scoped(WRITE))]
