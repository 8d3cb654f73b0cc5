"""Async runs: `POST /v1/runs` answers at once; the run's status, answer and usage;
its events as SSE resumable with `Last-Event-ID` (also after it ended); its
trajectory; cancelling it (its task and sandbox ended); its rate-limit slot; audit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serving import PROVIDER_KEY, RLM_TOML, InProcessServer, serving

from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]
SLOW = [{"role": "user", "content": "SLOW: how long is the context?"}]
WAIT_S = 30


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """A server whose keys run one run at a time, with keep-alives every 0.3 s."""
    folder = tmp_path_factory.mktemp("one-slot")
    toml = RLM_TOML + "\n[server]\nkey_max_concurrent = 1\nevent_keepalive_s = 0.3\n"
    with serving(folder, toml) as server:
        yield server


def auth(api: InProcessServer, key: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[key]}"}


def start(api: InProcessServer, messages: list[dict[str, str]], key: str = "acme") -> str:
    response = httpx.post(
        f"{api.url}/runs",
        headers=auth(api, key),
        json={"model": "rlm", "messages": messages, "context": "hello world"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("queued", "running") and body["object"] == "run"
    run_id = body["id"]
    assert isinstance(run_id, str)
    return run_id


def get(api: InProcessServer, run_id: str, key: str = "acme") -> dict[str, Any]:
    response = httpx.get(f"{api.url}/runs/{run_id}", headers=auth(api, key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ended(api: InProcessServer, run_id: str, key: str = "acme") -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (body := get(api, run_id, key))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def sse(
    api: InProcessServer, run_id: str, last: str | None = None, key: str = "acme"
) -> list[dict[str, str]]:
    """The messages of the run's event stream (each: its fields; comments as ":")."""
    headers = auth(api, key)
    if last is not None:
        headers["Last-Event-ID"] = last
    messages: list[dict[str, str]] = []
    current: dict[str, str] = {}
    with httpx.stream(
        "GET", f"{api.url}/runs/{run_id}/events", headers=headers, timeout=WAIT_S
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif line.startswith(":"):
                messages.append({":": line[1:].strip()})
            else:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
    return messages


def audited(api: InProcessServer, run_id: str) -> list[str]:
    async def actions() -> list[str]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            return [r.action for r in await store.audit_records() if r.target == run_id]
        finally:
            await store.aclose()

    return asyncio.run(actions())


def test_a_run_answers_at_once_and_ends_with_its_answer_and_usage(api: InProcessServer) -> None:
    began = time.monotonic()
    run_id = start(api, SLOW)
    assert time.monotonic() - began < 1.5  # the model takes 2 s: the answer did not wait
    body = ended(api, run_id)
    assert body["status"] == "completed" and body["answer"] == "slow answer"
    assert body["error"] is None and body["stop_reason"] == "final"
    assert body["usage"]["total_tokens"] > 0 and body["usage"]["model_calls"] >= 1
    assert body["finished_at"] >= body["created_at"]
    assert audited(api, run_id.removeprefix("run-")) == ["run.create", "run.finish"]


def test_events_are_numbered_resumable_and_end_with_end(api: InProcessServer) -> None:
    run_id = start(api, QUESTION)
    live = [m for m in sse(api, run_id) if ":" not in m]
    events, end = live[:-1], live[-1]
    assert end["event"] == "end" and json.loads(end["data"]) == {"status": "completed"}
    assert [int(m["id"]) for m in events] == list(range(1, len(events) + 1))
    kinds = [m["event"] for m in events]
    assert kinds[0] == "run_started" and "run_finished" in kinds
    for message in events:
        data = json.loads(message["data"])
        assert data["kind"] == message["event"] and data["run_id"] == run_id.removeprefix("run-")
    finished = json.loads(events[kinds.index("run_finished")]["data"])
    assert finished["answer"] == "11"

    # the run has ended: a client that comes back after event 2 gets the rest
    resumed = [m for m in sse(api, run_id, last="2") if ":" not in m]
    assert resumed == live[2:]
    assert [m["event"] for m in sse(api, run_id, last=events[-1]["id"])] == ["end"]

    trajectory = httpx.get(f"{api.url}/runs/{run_id}/trajectory", headers=auth(api)).json()
    assert trajectory["id"] == run_id and trajectory["status"] == "completed"
    assert trajectory["events"] == [json.loads(m["data"]) for m in events]


def test_a_stream_follows_a_running_run_with_keep_alives(one_slot: InProcessServer) -> None:
    run_id = start(one_slot, SLOW)
    messages = sse(one_slot, run_id)
    assert {":": "keep-alive"} in messages  # 2 s of model wait, keep-alives every 0.3 s
    assert messages[-1]["event"] == "end"
    assert "run_finished" in [m.get("event") for m in messages]


def test_a_bad_last_event_id_is_400(api: InProcessServer) -> None:
    run_id = start(api, QUESTION)
    headers = {**auth(api), "Last-Event-ID": "two"}
    response = httpx.get(f"{api.url}/runs/{run_id}/events", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Last-Event-ID"


def _children() -> set[threading.Thread]:
    """The live sandboxes of the in-process server (a local sandbox is a thread)."""
    return {t for t in threading.enumerate() if t.name == "rlmrt-local-sandbox"}


def test_cancel_ends_the_run_its_task_and_its_sandbox(api: InProcessServer) -> None:
    before = _children()
    run_id = start(api, SLOW)
    deadline = time.monotonic() + WAIT_S
    while not any(m.get("event") == "model_call_started" for m in _events_so_far(api, run_id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _children() - before, "the run's sandbox runs"
    cancelled = httpx.post(f"{api.url}/runs/{run_id}/cancel", headers=auth(api))
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["error"] == "cancelled"
    assert body["answer"] is None
    deadline = time.monotonic() + WAIT_S
    while _children() - before:  # the sandbox's thread ended
        assert time.monotonic() < deadline, _children() - before
        time.sleep(0.05)
    time.sleep(2.5)  # past the model's reply: the run stays cancelled
    assert get(api, run_id)["status"] == "cancelled"
    assert sse(api, run_id)[-1] == {"event": "end", "data": '{"status": "cancelled"}'}
    assert audited(api, run_id.removeprefix("run-")) == ["run.create", "run.cancel"]
    again = httpx.post(f"{api.url}/runs/{run_id}/cancel", headers=auth(api))
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def _events_so_far(api: InProcessServer, run_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{api.url}/runs/{run_id}/trajectory", headers=auth(api))
    events: list[dict[str, Any]] = response.json()["events"]
    return [{"event": e["kind"]} for e in events]


def test_a_running_run_holds_its_rate_limit_slot(one_slot: InProcessServer) -> None:
    run_id = start(one_slot, SLOW, key="beta")
    second = httpx.post(
        f"{one_slot.url}/runs",
        headers=auth(one_slot, "beta"),
        json={"model": "rlm", "messages": QUESTION},
    )
    assert second.status_code == 429
    assert "concurrent runs" in second.json()["error"]["message"]
    assert second.headers["Retry-After"]
    completion = httpx.post(
        f"{one_slot.url}/chat/completions",
        headers=auth(one_slot, "beta"),
        json={"model": "rlm", "messages": QUESTION},
    )
    assert completion.status_code == 429
    assert ended(one_slot, run_id, "beta")["status"] == "completed"
    start(one_slot, QUESTION, key="beta")  # the slot was given back


def test_a_failed_run_says_why_without_the_providers_message(api: InProcessServer) -> None:
    run_id = start(api, [{"role": "user", "content": "PLEASE FAIL"}])
    body = ended(api, run_id)
    assert body["status"] == "failed" and body["answer"] is None
    assert "failed" in body["error"] and "sk-provider" not in body["error"]
    # the provider's 401 quoted its key: the events its tenant reads hold it redacted
    trajectory = httpx.get(f"{api.url}/runs/{run_id}/trajectory", headers=auth(api)).text
    streamed = "".join(json.dumps(m) for m in sse(api, run_id))
    for text in (trajectory, streamed):
        assert "model_call_failed" in text and "[redacted]" in text
        assert PROVIDER_KEY not in text


def test_a_partial_run(api: InProcessServer) -> None:
    response = httpx.post(
        f"{api.url}/runs",
        headers=auth(api),
        json={"model": "short", "messages": [{"role": "user", "content": "NEVER ANSWER"}]},
    )
    body = ended(api, response.json()["id"])
    assert body["status"] == "partial" and body["stop_reason"] == "max_iterations"


def test_bad_run_requests(api: InProcessServer) -> None:
    unknown = httpx.post(
        f"{api.url}/runs", headers=auth(api), json={"model": "nope", "messages": QUESTION}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"
    no_key = httpx.post(f"{api.url}/runs", json={"model": "rlm", "messages": QUESTION})
    assert no_key.status_code == 401


def test_a_completion_is_not_an_async_run(api: InProcessServer) -> None:
    completion = httpx.post(
        f"{api.url}/chat/completions",
        headers=auth(api),
        json={"model": "rlm", "messages": QUESTION, "context": "abc"},
    )
    run_id = "run-" + completion.json()["rlm"]["run_id"]
    for path in ("", "/events", "/trajectory"):
        assert httpx.get(f"{api.url}/runs/{run_id}{path}", headers=auth(api)).status_code == 404
