"""OIDC/JWT bearer tokens: verified with PyJWT against the keys of `[server] jwt_jwks_url`.

A token is accepted when its signature is one of the JWKS's keys with an allowed
public-key algorithm (`jwt_algorithms`: never `none`, never HS*, so a public key
cannot be used as an HMAC secret), its `iss` and `aud` are the configured ones, it
has not expired (`exp` is required) and is already valid (`nbf`, `iat`), with
`jwt_leeway_s` of clock difference. Its tenant is named by `jwt_tenant_claim`.

Scopes come from `scope` (a space-separated string, RFC 9068) or `scp` (a list or a
string, as Azure AD and Okta send it): `runs:write` lets a token start runs (chat
completions), `runs:read` lets it read (the model list); `runs:write` includes
`runs:read`. A token with neither claim has no scope and can do nothing.

The algorithm is checked before any key is fetched, so a token of a refused algorithm
never reaches the JWKS. A refusal says why in general terms (expired, wrong audience,
bad signature...), never the token's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient

from rlmrt.config import ServerSettings

JWKS_CACHE_S = 300  # how long fetched keys are used before the set is fetched again
JWKS_TIMEOUT_S = 5
READ, WRITE = "runs:read", "runs:write"
IMPLIED = {WRITE: frozenset({WRITE, READ}), READ: frozenset({READ})}
# three base64url parts, the signature possibly empty (alg none): header.payload.signature
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(text: str) -> bool:
    return _JWT.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a valid token says: who (`subject`), of which tenant, allowed to do what."""

    subject: str
    tenant: str  # the tenant's name, as the token names it (not checked to exist here)
    scopes: frozenset[str]


class TokenRefused(Exception):
    """A token that is not accepted: `reason` for the audit log, the message for the
    caller; `status` 401 (the token) or 503 (its keys could not be fetched)."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(message)


class TokenVerifier:
    """Verifies bearer tokens against the JWKS of `settings` (blocking: the keys are
    fetched by urllib; call it from a worker thread)."""

    def __init__(self, settings: ServerSettings) -> None:
        assert settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.tenant_claim = settings.jwt_tenant_claim
        self.algorithms = list(settings.jwt_algorithms)
        self.leeway_s = settings.jwt_leeway_s
        self._keys = PyJWKClient(
            settings.jwt_jwks_url,
            cache_keys=True,
            lifespan=JWKS_CACHE_S,
            timeout=JWKS_TIMEOUT_S,
        )

    def verify(self, token: str) -> VerifiedToken:
        """The token's subject, tenant and scopes, or `TokenRefused` saying why."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenRefused("malformed token", "the bearer token is not a valid JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRefused(
                "algorithm refused",
                f"the bearer token's algorithm is not accepted (accepted: "
                f"{', '.join(self.algorithms)})",
            )
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise TokenRefused(
                "jwks unavailable",
                "the keys that verify bearer tokens could not be fetched; try again later",
                status=503,
            ) from exc
        except jwt.PyJWKClientError as exc:
            raise TokenRefused(
                "unknown signing key", "the bearer token is not signed by a trusted key"
            ) from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from exc
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise TokenRefused(
                "no tenant claim",
                f"the bearer token has no {self.tenant_claim!r} claim naming its tenant",
            )
        return VerifiedToken(subject=str(claims["sub"]), tenant=tenant, scopes=token_scopes(claims))


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The scopes of `scope` or `scp`, with what each implies."""
    given = claims.get("scope", claims.get("scp", ""))
    names = given.split() if isinstance(given, str) else given if isinstance(given, list) else []
    granted: set[str] = set()
    for name in names:
        if isinstance(name, str):
            granted |= IMPLIED.get(name, frozenset({name}))
    return frozenset(granted)


def _refusal(exc: jwt.PyJWTError) -> TokenRefused:
    """The general reason of PyJWT's error (its own text may quote claims)."""
    reasons: list[tuple[type[jwt.PyJWTError], str, str]] = [
        (jwt.ExpiredSignatureError, "expired", "the bearer token expired"),
        (jwt.ImmatureSignatureError, "not yet valid", "the bearer token is not valid yet"),
        (jwt.InvalidAudienceError, "wrong audience", "the bearer token is not for this server"),
        (jwt.InvalidIssuerError, "wrong issuer", "the bearer token's issuer is not trusted"),
        (jwt.InvalidSignatureError, "bad signature", "the bearer token's signature is wrong"),
        (jwt.InvalidAlgorithmError, "algorithm refused", "the bearer token's algorithm is wrong"),
        (jwt.MissingRequiredClaimError, "missing claim", "the bearer token lacks a claim"),
    ]
    for kind, reason, message in reasons:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                message = f"the bearer token has no {exc.claim!r} claim"
            return TokenRefused(reason, message)
    return TokenRefused("invalid token", "the bearer token is not valid")
