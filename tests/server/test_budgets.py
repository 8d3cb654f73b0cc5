"""USD per day budgets of keys and tenants, priced with `[llm] prices` on the scripted
model (about 500 tokens a call at 1000 USD per million: about 0.5 USD a call): a
spent budget is a 429 naming it, and a budget reached mid-run ends that run as partial
with the budget as its reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import InProcessServer, serving

from rlmrt.server.models import AuditRecord, RunRecord
from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]
LOOP = [{"role": "user", "content": "NEVER ANSWER"}]  # the model never calls FINAL
KEY_DAILY_USD = 0.6
TOML = f"""
[sandbox]
kind = "local"

[llm]
prices = {{ "openai/test-model" = {{ input_per_mtok = 1000, output_per_mtok = 1000 }} }}

[server]
key_daily_usd = {KEY_DAILY_USD}

[server.profiles.loop]
max_iterations = 4
"""


async def make_keys(database: Path) -> dict[str, str]:
    """solo: a key of the [server] default budget; free: a key of its own budget 0 (none);
    team1/team2: keys of a tenant of 0.4 USD a day (its own), each of the default;
    streams: a key of a tenant of 0.3 USD a day."""
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        await store.create_tenant("solo")
        await store.create_tenant("team")
        await store.set_tenant_limits("team", daily_usd=0.4)
        await store.create_tenant("streams", daily_usd=0.3)
        return {
            "solo": (await store.create_key("solo"))[0],
            "free": (await store.create_key("solo", daily_usd=0))[0],
            "team1": (await store.create_key("team"))[0],
            "team2": (await store.create_key("team"))[0],
            "streams": (await store.create_key("streams"))[0],
        }
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serving(tmp_path_factory.mktemp("budgets"), TOML, make_keys) as server:
        yield server


def ask(api: InProcessServer, name: str, messages: list[Any], model: str = "rlm") -> httpx.Response:
    return httpx.post(
        f"{api.url}/chat/completions",
        headers={"Authorization": f"Bearer {api.keys[name]}"},
        json={"model": model, "messages": messages, "context": "abc"},
        timeout=60,
    )


def stored(api: InProcessServer, tenant: str) -> tuple[list[RunRecord], list[AuditRecord]]:
    """The tenant's runs, oldest first, and the audit log."""

    async def read() -> tuple[list[RunRecord], list[AuditRecord]]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            return list(reversed(await store.runs(tenant))), list(await store.audit_records())
        finally:
            await store.aclose()

    return asyncio.run(read())


def refused(response: httpx.Response) -> str:
    """The message of a budget's 429 (its body and Retry-After checked)."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    retry_after = int(response.headers["retry-after"])
    assert abs(retry_after - (midnight - now).total_seconds()) <= 5
    message: str = error["message"]
    return message


def test_a_key_budget_ends_a_run_mid_way_then_refuses(budgeted: InProcessServer) -> None:
    key = budgeted.keys["solo"]
    first = ask(budgeted, "solo", QUESTION)  # one call, about 0.5 USD: within 0.6
    assert first.status_code == 200, first.text
    spent = first.json()["rlm"]["cost_usd"]
    assert 0.1 < spent < KEY_DAILY_USD
    # the next run may spend what is left (about 0.1 USD): one call spends it, and the
    # run, which would go on to max_iterations, ends there as partial
    second = ask(budgeted, "solo", LOOP, model="loop")
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["rlm"]["partial"] is True
    assert body["rlm"]["stop_reason"] == "key_daily_usd"
    assert body["rlm"]["model_calls"] == 1
    # now it is spent: refused before a run starts, naming the budget
    message = refused(ask(budgeted, "solo", QUESTION))
    assert message.startswith(
        f"budget exceeded: the daily budget of key {key[:12]}... ({KEY_DAILY_USD:g} USD) is spent"
    )
    assert key not in message
    runs, audit = stored(budgeted, "solo")
    assert [(r.status, r.stop_reason) for r in runs] == [
        ("completed", "final"),
        ("partial", "key_daily_usd"),
    ]
    refusal = [r for r in audit if r.action == "budget.refuse"][-1]
    assert refusal.actor == key[:12] and refusal.target == f"key {key[:12]}..."
    assert json.loads(refusal.detail)["budget"] == "key_daily_usd"
    # another key of the tenant has its own budget: 0, none
    for _ in range(2):
        assert ask(budgeted, "free", QUESTION).status_code == 200


def test_a_tenant_budget_counts_all_its_keys(budgeted: InProcessServer) -> None:
    first = ask(budgeted, "team1", LOOP, model="loop")  # 0.4 USD left: one call
    assert first.status_code == 200, first.text
    assert first.json()["rlm"]["stop_reason"] == "tenant_daily_usd"
    assert first.json()["rlm"]["model_calls"] == 1
    message = refused(ask(budgeted, "team2", QUESTION))  # the other key: the tenant's spent
    assert message.startswith("budget exceeded: the daily budget of tenant team (0.4 USD)")


def test_a_streamed_run_a_budget_ends_says_so_in_its_last_chunk(
    budgeted: InProcessServer,
) -> None:
    body = {"model": "loop", "messages": LOOP, "context": "abc", "stream": True}
    headers = {"Authorization": f"Bearer {budgeted.keys['streams']}"}
    with httpx.stream(
        "POST", f"{budgeted.url}/chat/completions", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["rlm"]["stop_reason"] == "tenant_daily_usd"
    assert last["rlm"]["model_calls"] == 1
    refused(ask(budgeted, "streams", QUESTION))
