"""Rate limits of keys and tenants as OpenAI's clients meet them: 429, `Retry-After`
and OpenAI's error body naming the limit; refusals in the audit log."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from serving import InProcessServer, serving

from rlmrt.server.models import AuditRecord
from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]
SLOW = [{"role": "user", "content": "SLOW please"}]
KEY_RPM = 3
TOML = f"""
[sandbox]
kind = "local"

[server]
key_requests_per_minute = {KEY_RPM}
key_max_concurrent = 1
"""


async def make_keys(database: Path) -> dict[str, str]:
    """Tenants: solo (one key per test), pair (two keys, 4 requests/min together), slow
    (one key, at most one run at a time), thrifty (1 token/min: its first run spends it)."""
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        await store.create_tenant("solo")
        await store.create_tenant("pair", requests_per_minute=4)
        await store.create_tenant("slow")
        await store.create_tenant("thrifty")
        await store.create_tenant("late")
        await store.set_tenant_limits("thrifty", tokens_per_minute=1)
        keys = {f"solo{i}": (await store.create_key("solo"))[0] for i in range(3)}
        keys["pair1"] = (await store.create_key("pair"))[0]
        keys["pair2"] = (await store.create_key("pair"))[0]
        keys["slow"] = (await store.create_key("slow"))[0]
        keys["slow2"] = (await store.create_key("slow"))[0]
        keys["thrifty"] = (await store.create_key("thrifty"))[0]
        keys["late"] = (await store.create_key("late"))[0]
        keys["leaver"] = (await store.create_key("slow"))[0]
        return keys
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serving(tmp_path_factory.mktemp("limits"), TOML, make_keys) as server:
        yield server


def client(api: InProcessServer, name: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url, api_key=api.keys[name], max_retries=0)


def ask(api: InProcessServer, name: str, messages: list[Any] = QUESTION) -> str | None:
    with client(api, name) as made:
        reply = made.chat.completions.create(
            model="rlm", messages=messages, extra_body={"context": "abc"}
        )
    return reply.choices[0].message.content


def refusal(api: InProcessServer, name: str, messages: list[Any] = QUESTION) -> dict[str, Any]:
    """The 429 of one more request: its error body and Retry-After."""
    with pytest.raises(openai.RateLimitError) as caught:
        ask(api, name, messages)
    response = caught.value.response
    assert response.status_code == 429
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded"
    retry_after = int(response.headers["retry-after"])
    return {"message": body["error"]["message"], "retry_after": retry_after}


def audit(api: InProcessServer) -> list[AuditRecord]:
    async def read() -> list[AuditRecord]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            return list(await store.audit_records())
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_a_key_gets_its_requests_per_minute_then_429(limited: InProcessServer) -> None:
    key = limited.keys["solo0"]
    assert [ask(limited, "solo0") for _ in range(KEY_RPM)] == ["3"] * KEY_RPM
    refused = refusal(limited, "solo0")
    assert refused["message"].startswith(
        f"rate limit reached: requests per minute of key {key[:12]}... ({KEY_RPM})"
    )
    assert key not in refused["message"]
    assert 1 <= refused["retry_after"] <= 60
    assert refusal(limited, "solo0")["retry_after"] <= refused["retry_after"]
    # another key of the same tenant has its own count
    assert ask(limited, "solo1") == "3"
    refusals = [r for r in audit(limited) if r.action == "ratelimit.refuse"]
    assert [r.actor for r in refusals][-2:] == [key[:12], key[:12]]
    assert json.loads(refusals[-1].detail)["limit"] == "requests per minute"
    assert refusals[-1].client == "127.0.0.1"


def test_a_tenant_limit_counts_all_its_keys(limited: InProcessServer) -> None:
    assert [ask(limited, name) for name in ("pair1", "pair2", "pair1", "pair2")] == ["3"] * 4
    # each key has made 2 of its 3; the tenant has made its 4
    for name in ("pair1", "pair2"):
        refused = refusal(limited, name)
        assert refused["message"].startswith(
            "rate limit reached: requests per minute of tenant pair (4)"
        )


def test_concurrent_runs_over_the_limit_get_429(limited: InProcessServer) -> None:
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, limited, "slow", SLOW)  # the model answers after 2 s
        deadline = time.monotonic() + 10
        prefix = limited.keys["slow"][:12]
        while not any(r.action == "run.create" and r.actor == prefix for r in audit(limited)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = refusal(limited, "slow", SLOW)
        # the tenant's other key is not held by this key's limit
        other = pool.submit(ask, limited, "slow2", SLOW)
        assert first.result(timeout=30) == "slow answer"
        assert other.result(timeout=30) == "slow answer"
    key = limited.keys["slow"]
    assert refused["message"].startswith(f"rate limit reached: concurrent runs of key {key[:12]}")
    assert "(1)" in refused["message"] and refused["retry_after"] == 1
    # the run gave its slot back: the key runs again, streamed too, and again after that
    with client(limited, "slow") as made:
        chunks = list(
            made.chat.completions.create(
                model="rlm", messages=QUESTION, stream=True, extra_body={"context": "ab"}
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "2"


def test_tokens_per_minute_are_charged_after_the_run(limited: InProcessServer) -> None:
    assert ask(limited, "thrifty") == "3"  # under the limit when it started
    refused = refusal(limited, "thrifty")
    assert refused["message"].startswith(
        "rate limit reached: tokens per minute of tenant thrifty (1)"
    )
    assert 1 <= refused["retry_after"] <= 60


def test_a_request_refused_before_its_body_is_read_holds_no_slot(
    limited: InProcessServer,
) -> None:
    """A bad request (unknown model) is counted as a request but gives its run slot back."""
    bad = httpx.post(
        f"{limited.url}/chat/completions",
        headers={"Authorization": f"Bearer {limited.keys['solo2']}"},
        json={"model": "nope", "messages": QUESTION},
    )
    assert bad.status_code == 404
    assert ask(limited, "solo2") == "3"  # key_max_concurrent = 1: the slot was given back


def test_a_tenant_limit_set_while_serving_holds_at_once(limited: InProcessServer) -> None:
    assert ask(limited, "late") == "3"

    async def set_rpm() -> None:  # what `rlm tenants set late --rpm 2` does
        store = await Store.open(f"sqlite+aiosqlite:///{limited.database}")
        try:
            await store.set_tenant_limits("late", requests_per_minute=2)
        finally:
            await store.aclose()

    asyncio.run(set_rpm())
    assert ask(limited, "late") == "3"
    refused = refusal(limited, "late")
    assert refused["message"].startswith(
        "rate limit reached: requests per minute of tenant late (2)"
    )


def test_a_client_leaving_its_stream_gives_its_run_slot_back(limited: InProcessServer) -> None:
    key = limited.keys["leaver"]  # key_max_concurrent = 1
    with httpx.stream(
        "POST",
        f"{limited.url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "rlm", "messages": SLOW, "stream": True},
    ) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if line)  # the run is under way
    deadline = time.monotonic() + 10
    while not any(r.action == "run.cancel" and r.actor == key[:12] for r in audit(limited)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ask(limited, "leaver") == "3"


def test_a_rate_limit_storage_that_does_not_answer_refuses_requests(
    tmp_path: Path,
) -> None:
    """Redis gone (nothing listens on its port): requests get 503, not unlimited runs,
    and /readyz says the server is not ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    toml = (
        f'[sandbox]\nkind = "local"\n\n[server]\nrate_limit_storage = "redis://127.0.0.1:{port}"\n'
    )
    with serving(tmp_path, toml) as server:
        response = httpx.post(
            f"{server.url}/chat/completions",
            headers={"Authorization": f"Bearer {server.keys['acme']}"},
            json={"model": "rlm", "messages": QUESTION, "context": "abc"},
            timeout=30,
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "rate_limit_storage_unavailable"
        assert response.headers["retry-after"] == "5"
        ready = httpx.get(f"{server.root}/readyz", timeout=30)
        assert ready.status_code == 503
        assert "rate-limit storage" in ready.json()["error"]["message"]
        assert "the rate-limit storage failed (ConnectionError)" in server.log_text()
    assert not (tmp_path / "home" / "runs").exists()  # no run started
