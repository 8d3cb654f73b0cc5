"""Several replicas of `rlm serve` sharing one PostgreSQL (tenants, keys, runs, audit)
and one Redis (the rate-limit counters): a limit holds across them, not per replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from serving import APIServer, model_reply, server_env, start_server

from rlmrt.config import ServerSettings
from rlmrt.server.auth import Caller
from rlmrt.server.models import ApiKey, Tenant
from rlmrt.server.ratelimits import RateLimited, RateLimiter
from rlmrt.server.storage import Store
from rlmrt.testing import ScriptedOpenAIServer

pytestmark = pytest.mark.server_daemons

REPLICAS = 4
KEY_RPM = 60
REQUESTS = 300
TOML = '[sandbox]\nkind = "local"\n'


async def make_keys(database_url: str) -> dict[str, str]:
    """busy: a key of the 60 requests/min; slow: a tenant of 2 runs at a time."""
    store = await Store.open(database_url)
    try:
        await store.create_tenant("busy")
        await store.create_tenant("slow", max_concurrent=2)
        return {
            "busy": (await store.create_key("busy"))[0],
            "slow": (await store.create_key("slow"))[0],
        }
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: object, redis_url: str
) -> Iterator[tuple[list[APIServer], dict[str, str], str]]:
    """Four `rlm serve` processes on one database and one Redis; the keys; the
    database's URL."""
    from server_daemons import Postgres

    assert isinstance(postgres_server, Postgres)
    database_url = postgres_server.new_database()
    folder = tmp_path_factory.mktemp("replicas")
    model = ScriptedOpenAIServer(model_reply)
    model.start()
    try:
        env = server_env(folder / "home", model)
        env.update(
            RLM_SERVER__DATABASE_URL=database_url,
            RLM_SERVER__RATE_LIMIT_STORAGE=redis_url,
            RLM_SERVER__KEY_REQUESTS_PER_MINUTE=str(KEY_RPM),
            RLM_SERVER__KEY_MAX_CONCURRENT="0",
            RLM_SERVER__TENANT_REQUESTS_PER_MINUTE="0",
            RLM_SERVER__TENANT_MAX_CONCURRENT="0",
        )
        keys = asyncio.run(make_keys(database_url))  # migrates the database first
        with ExitStack() as stack:
            servers = []
            for i in range(REPLICAS):
                home = folder / f"replica{i}"
                home.mkdir()
                (home / "rlm.toml").write_text(TOML)
                server = start_server(home, env)
                stack.callback(server.stop)
                servers.append(server)
            yield servers, keys, database_url
    finally:
        model.stop()


def post(server: APIServer, key: str, content: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "rlm", "messages": [{"role": "user", "content": content}],
              "context": "abc"},
        timeout=60,
    )  # fmt: skip


@pytest.mark.slow  # four server processes
def test_a_key_limit_holds_across_four_replicas(
    replicas: tuple[list[APIServer], dict[str, str], str],
) -> None:
    """300 requests of a 60/min key spread over four replicas at once: exactly 60 are
    answered, 240 get 429 with Retry-After."""
    servers, keys, database_url = replicas
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(
            pool.map(
                lambda i: post(servers[i % REPLICAS], keys["busy"], "How long?"), range(REQUESTS)
            )
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == KEY_RPM, sorted(set(statuses))
    assert statuses.count(429) == REQUESTS - KEY_RPM
    answered = [r.json()["choices"][0]["message"]["content"] for r in responses if r.is_success]
    assert answered == ["3"] * KEY_RPM
    for refused in (r for r in responses if r.status_code == 429):
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert error["message"].startswith("rate limit reached: requests per minute of key")
    # every replica answered some and refused some
    for i in range(REPLICAS):
        mine = statuses[i::REPLICAS]
        assert 200 in mine and 429 in mine

    async def recorded() -> tuple[int, int, tuple[int, object]]:
        store = await Store.open(database_url)
        try:
            records = await store.audit_records()
            runs = [r for r in await store.runs() if r.status == "completed"]
            refusals = sum(r.action == "ratelimit.refuse" for r in records)
            return len(runs), refusals, await store.verify_audit()
        finally:
            await store.aclose()

    # a completion's end is written right after its answer was sent: wait for the last
    deadline = time.monotonic() + 10
    runs, refusals, (count, broken) = asyncio.run(recorded())
    while runs < KEY_RPM and time.monotonic() < deadline:
        time.sleep(0.05)
        runs, refusals, (count, broken) = asyncio.run(recorded())
    assert (runs, refusals) == (KEY_RPM, REQUESTS - KEY_RPM)
    assert broken is None and count >= REQUESTS  # one chain, written by four replicas


@pytest.mark.slow
def test_run_slots_are_shared_across_replicas(
    replicas: tuple[list[APIServer], dict[str, str], str],
) -> None:
    """A tenant of 2 runs at a time, 4 slow runs at once on 4 replicas: 2 run, 2 get 429."""
    servers, keys, _ = replicas
    with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
        responses = list(
            pool.map(lambda i: post(servers[i], keys["slow"], "SLOW please"), range(REPLICAS))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429]
    refused = [r.json()["error"]["message"] for r in responses if r.status_code == 429]
    assert all(
        m.startswith("rate limit reached: concurrent runs of tenant slow (2)") for m in refused
    )
    # the slots were given back: the next two run
    with ThreadPoolExecutor(max_workers=2) as pool:
        again = list(pool.map(lambda i: post(servers[i], keys["slow"], "How long?"), range(2)))
    assert [r.status_code for r in again] == [200, 200]
    for server in servers:
        assert httpx.get(f"{server.root}/readyz").json() == {"status": "ready"}


async def test_two_limiters_on_one_redis_share_their_counts(redis_url: str) -> None:
    """Two processes' limiters (here two in one) count one key's requests together."""
    settings = ServerSettings(rate_limit_storage=redis_url, key_requests_per_minute=5)
    tenant = Tenant(id="ten_shared", name="shared")
    caller = Caller.of_key(
        ApiKey(id="key_shared_redis", tenant_id=tenant.id, prefix="rlm-sharedkey"), tenant
    )
    first, second = RateLimiter(settings), RateLimiter(settings)
    try:
        for limiter in [first, second] * 2 + [first]:
            await (await limiter.admit(caller, tenant)).release(0)
        with pytest.raises(RateLimited, match="requests per minute of key rlm-sharedkey"):
            await second.admit(caller, tenant)
        assert await first.storage.check()
    finally:
        await first.aclose()
        await second.aclose()
