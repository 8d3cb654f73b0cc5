"""OIDC/JWT bearer tokens: a server that trusts a JWKS served on 127.0.0.1 runs a good
token's requests as its tenant, and refuses every bad token with a 401 saying why in
general terms, audited without the token."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwks import AUDIENCE, ISSUER, IdentityProvider
from serving import InProcessServer, serving

from rlmrt.config import RLMConfig
from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]
TOML = """
[sandbox]
kind = "local"

[server]
{jwt}
"""


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider
) -> Iterator[InProcessServer]:
    with serving(tmp_path_factory.mktemp("jwt"), TOML.format(jwt=idp.toml())) as served:
        yield served


def get_models(server: InProcessServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/models", headers={"Authorization": f"Bearer {token}"})


def audit_records(server: InProcessServer) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = await Store.open(f"sqlite+aiosqlite:///{server.database}")
        try:
            return [
                {"action": r.action, "actor": r.actor, "detail": json.loads(r.detail)}
                | {"tenant_id": r.tenant_id, "text": f"{r.actor} {r.target} {r.detail}"}
                for r in await store.audit_records()
            ]
        finally:
            await store.aclose()

    return asyncio.run(read())


@pytest.mark.parametrize("kid", ["rsa", "ec"])
def test_a_good_token_runs_as_its_tenant(
    server: InProcessServer, idp: IdentityProvider, kid: str
) -> None:
    token = idp.token(kid, sub=f"alice-{kid}")
    with openai.OpenAI(base_url=server.url, api_key=token, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="rlm", messages=QUESTION, extra_body={"context": "0123"}
        )
        assert reply.choices[0].message.content == "4"
        streamed = client.chat.completions.create(
            model="rlm", messages=QUESTION, extra_body={"context": "01"}, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "2"
        assert [m.id for m in client.models.list()] == ["rlm"]

    async def runs() -> list[tuple[str | None, str | None, str]]:
        store = await Store.open(f"sqlite+aiosqlite:///{server.database}")
        try:
            return [(r.key_id, r.subject, r.status) for r in await store.runs("acme")]
        finally:
            await store.aclose()

    deadline = time.monotonic() + 10  # the streamed run is recorded as it ends
    while any(run[2] == "running" for run in asyncio.run(runs())):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    mine = [run for run in asyncio.run(runs()) if run[1] == f"alice-{kid}"]
    assert mine == [(None, f"alice-{kid}", "completed")] * 2
    created = [r for r in audit_records(server) if r["action"] == "run.create"]
    assert any(r["actor"] == f"jwt:alice-{kid}" for r in created)


def _other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


BAD_TOKENS: dict[str, tuple[Any, str, str]] = {
    # name: (make the token from the provider, the reason audited, words of the message)
    "expired": (
        lambda idp: idp.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "expired",
        "expired",
    ),
    "not yet valid": (
        lambda idp: idp.token(nbf=int(time.time()) + 3600),
        "not yet valid",
        "not valid yet",
    ),
    "issued in the future": (
        lambda idp: idp.token(iat=int(time.time()) + 3600),
        "not yet valid",
        "not valid yet",
    ),
    "no expiry": (lambda idp: idp.token(exp=None), "missing claim", "no 'exp' claim"),
    "wrong issuer": (
        lambda idp: idp.token(iss="https://evil.example.test/"),
        "wrong issuer",
        "issuer is not trusted",
    ),
    "wrong audience": (
        lambda idp: idp.token(aud="another-service"),
        "wrong audience",
        "not for this server",
    ),
    "unknown key id": (
        lambda idp: idp.token("rotated-away", key=_other_rsa_key()),
        "unknown signing key",
        "not signed by a trusted key",
    ),
    "another key under a known id": (
        lambda idp: idp.token("rsa", key=_other_rsa_key()),
        "bad signature",
        "signature is wrong",
    ),
    "alg none": (lambda idp: idp.unsigned_token(), "algorithm refused", "algorithm"),
    "HS256 keyed with the public key": (
        lambda idp: idp.hs256_with_public_key(),
        "algorithm refused",
        "algorithm",
    ),
    "a tenant that does not exist": (
        lambda idp: idp.token(tenant="nobody"),
        "unknown tenant",
        "names no tenant",
    ),
    "no tenant claim": (lambda idp: idp.token(tenant=None), "no tenant claim", "'tenant'"),
    "payload edited after signing": (
        lambda idp: _with_payload(idp.token(), idp.claims(tenant="beta")),
        "bad signature",
        "signature is wrong",
    ),
}


def _with_payload(token: str, claims: dict[str, Any]) -> str:
    header, _payload, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_a_bad_token_is_refused_saying_why(
    server: InProcessServer, idp: IdentityProvider, name: str
) -> None:
    make, reason, words = BAD_TOKENS[name]
    token = make(idp)
    before = len(audit_records(server))
    response = get_models(server, token)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and words in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"
    completion = httpx.post(
        f"{server.url}/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "rlm", "messages": QUESTION},
    )
    assert completion.status_code == 401
    records = audit_records(server)[before:]
    assert [r["action"] for r in records] == ["auth.fail", "auth.fail"]
    assert {r["detail"]["reason"] for r in records} == {reason}
    assert all(r["tenant_id"] is None for r in records)
    for part in token.split("."):
        if len(part) > 8:
            assert part not in response.text and all(part not in r["text"] for r in records)


def test_scopes_decide_what_a_token_may_do(server: InProcessServer, idp: IdentityProvider) -> None:
    reader = idp.token(scope="runs:read", sub="reader")
    assert get_models(server, reader).status_code == 200
    before = len(audit_records(server))
    for token in (reader, idp.token(scope=None), idp.token(scope="openid profile")):
        response = httpx.post(
            f"{server.url}/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            json={"model": "rlm", "messages": QUESTION, "context": "ab"},
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "insufficient_scope" and "'runs:write'" in error["message"]
    denied = audit_records(server)[before:]
    assert [(r["action"], r["detail"]["reason"]) for r in denied] == [
        ("auth.denied", "no scope runs:write")
    ] * 3
    assert denied[0]["actor"] == "jwt:reader" and denied[0]["tenant_id"] is not None
    assert get_models(server, idp.token(scope=None)).status_code == 403
    # Azure AD and Okta send `scp`, a list or a string
    assert get_models(server, idp.token(scope=None, scp=["runs:write"])).status_code == 200
    assert get_models(server, idp.token(scope=None, scp="runs:read")).status_code == 200


def test_refused_algorithms_are_refused_before_any_key_is_looked_up(
    server: InProcessServer, idp: IdentityProvider
) -> None:
    """Under a key id the JWKS lacks, a lookup would refuse the key (and fetch the set
    again): these are refused for their algorithm first."""
    for token in (
        idp.unsigned_token("not-in-the-jwks"),
        idp.hs256_with_public_key("not-in-the-jwks"),
        "e30.e30.",
    ):
        response = get_models(server, token)
        assert response.status_code == 401
        assert "algorithm is not accepted" in response.json()["error"]["message"]
    assert "not a valid JWT" in get_models(server, "abc.def.ghi").json()["error"]["message"]


def test_api_keys_still_work_beside_tokens(server: InProcessServer) -> None:
    assert get_models(server, server.keys["acme"]).status_code == 200
    assert get_models(server, server.keys["revoked"]).status_code == 401


def test_a_server_without_jwks_refuses_tokens(api: InProcessServer, idp: IdentityProvider) -> None:
    response = get_models(api, idp.token())
    assert response.status_code == 401
    assert "does not accept JWT bearer tokens" in response.json()["error"]["message"]


def test_unreachable_keys_are_503_not_a_wrong_token(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    gone = IdentityProvider()
    gone.start()
    toml = TOML.format(jwt=gone.toml())
    token = gone.token()
    gone.stop()  # the provider's keys cannot be fetched
    with serving(tmp_path_factory.mktemp("nojwks"), toml) as served:
        response = get_models(served, token)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "jwks_unavailable"
        assert audit_records(served)[-1]["detail"]["reason"] == "jwks unavailable"


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"jwt_jwks_url": "https://idp.test/jwks"}, "needs jwt_issuer and jwt_audience"),
        (
            {"jwt_jwks_url": "http://idp.test/k", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE},
            "use https",
        ),
        ({"jwt_algorithms": ["RS256", "HS256"]}, "'HS256': a bearer token's algorithm"),
        ({"jwt_algorithms": ["none"]}, "'none': a bearer token's algorithm"),
        ({"jwt_algorithms": []}, "at least 1"),
    ],
)
def test_unsafe_jwt_settings_are_refused(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RLMConfig(server=settings)
