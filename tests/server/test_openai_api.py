"""`rlm serve` as OpenAI's clients see it: the official `openai` client (sync, async,
streaming) and LiteLLM's `openai/` provider, against a real server process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from serving import PROVIDER_KEY
from serving import InProcessServer as APIServer

from rlmrt.llm._litellm import import_litellm
from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]


_opened: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def client(api: APIServer, key: str = "acme") -> openai.OpenAI:
    """An openai client with a key of `api` (by name) or `key` itself; closed after the test."""
    made = openai.OpenAI(base_url=api.url, api_key=api.keys.get(key, key), max_retries=0)
    _opened.append(made)
    return made


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_completion_answers_over_the_context_given_in_the_body(api: APIServer) -> None:
    reply = client(api).chat.completions.create(
        model="rlm", messages=QUESTION, extra_body={"context": "hello world"}
    )
    assert reply.choices[0].message.content == "11"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "rlm"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    extra = reply.model_extra or {}
    assert extra["rlm"]["partial"] is False
    assert extra["rlm"]["stop_reason"] == "final"
    assert reply.id == f"chatcmpl-{extra['rlm']['run_id']}"


LENGTH_SCHEMA = {
    "type": "object",
    "properties": {"length": {"type": "integer"}, "unit": {"enum": ["chars", "words"]}},
    "required": ["length", "unit"],
}


def test_a_json_schema_response_format_makes_the_answer_its_typed_json(api: APIServer) -> None:
    reply = client(api).chat.completions.create(
        model="rlm",
        messages=QUESTION,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Length", "schema": LENGTH_SCHEMA},
        },
        extra_body={"context": "hello world"},
    )
    content = reply.choices[0].message.content
    assert content is not None and json.loads(content) == {"length": 11, "unit": "chars"}
    assert reply.choices[0].finish_reason == "stop"
    chunks = list(
        client(api).chat.completions.create(
            model="rlm",
            messages=QUESTION,
            response_format={"type": "json_schema", "json_schema": {"schema": LENGTH_SCHEMA}},
            extra_body={"context": "hello"},
            stream=True,
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(streamed) == {"length": 5, "unit": "chars"}
    anything = client(api).chat.completions.create(
        model="rlm",
        messages=QUESTION,
        response_format={"type": "json_object"},
        extra_body={"context": "hi"},
    )
    assert json.loads(anything.choices[0].message.content or "") == {"length": 2, "unit": "chars"}
    plain = client(api).chat.completions.create(
        model="rlm", messages=QUESTION, extra_body={"context": "hello world"}
    )
    assert plain.choices[0].message.content == "11"  # no response_format: no type asked


def test_a_bad_response_format_is_400_naming_it(api: APIServer) -> None:
    for bad, param in (
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": {"x": 1}}}, "response_format"),
        ({"type": "xml"}, "response_format.type"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            client(api).chat.completions.create(
                model="rlm",
                messages=QUESTION,
                response_format=bad,  # type: ignore[arg-type]
                extra_body={"context": "abc"},
            )
        error = caught.value.body
        assert isinstance(error, dict) and error["param"] == param, error


def test_sampling_fields_are_accepted_and_ignored(api: APIServer) -> None:
    reply = client(api).chat.completions.create(
        model="rlm",
        messages=QUESTION,
        temperature=0.2,
        max_tokens=1,
        top_p=0.5,
        user="someone",
        extra_body={"context": "abcdef"},
    )
    assert reply.choices[0].message.content == "6"


def test_context_list_and_object(api: APIServer) -> None:
    openai_client = client(api)
    for context, expected in ((["a", "b", "c"], "3"), ({"x": 1, "y": 2}, "2")):
        reply = openai_client.chat.completions.create(
            model="rlm", messages=QUESTION, extra_body={"context": context}
        )
        assert reply.choices[0].message.content == expected


def test_earlier_messages_are_the_context_when_none_is_given(api: APIServer) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "alpha"}]},
        {"role": "assistant", "content": "beta"},
        *QUESTION,
    ]
    reply = client(api).chat.completions.create(model="rlm", messages=messages)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "3"


def test_async_client_runs_concurrent_completions(api: APIServer) -> None:
    async def main() -> list[str | None]:
        async with openai.AsyncOpenAI(
            base_url=api.url, api_key=api.keys["beta"], max_retries=0
        ) as async_client:
            replies = await asyncio.gather(
                *(
                    async_client.chat.completions.create(
                        model="rlm", messages=QUESTION, extra_body={"context": "x" * n}
                    )
                    for n in (1, 22, 333)
                )
            )
        return [reply.choices[0].message.content for reply in replies]

    assert asyncio.run(main()) == ["1", "22", "333"]


def test_streaming_gives_root_tokens_then_the_answer_then_usage(api: APIServer) -> None:
    chunks = list(
        client(api).chat.completions.create(
            model="rlm",
            messages=QUESTION,
            extra_body={"context": "hello"},
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "5"
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "")
        for c in chunks
        if c.choices
    )
    assert "FINAL(str(len(context)))" in reasoning  # the root model's reply, as it streamed
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert (finishing[0].model_extra or {})["rlm"]["partial"] is False
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0


def test_streaming_without_usage_and_the_done_line(api: APIServer) -> None:
    with httpx.stream(
        "POST",
        f"{api.url}/chat/completions",
        headers={"Authorization": f"Bearer {api.keys['acme']}"},
        json={"model": "rlm", "messages": QUESTION, "context": "abc", "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    bodies = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all("usage" not in body for body in bodies)
    assert bodies[-1]["choices"][0]["delta"] == {"content": "3"}


def test_a_client_leaving_a_stream_cancels_its_run(api: APIServer) -> None:
    with httpx.stream(
        "POST",
        f"{api.url}/chat/completions",
        headers={"Authorization": f"Bearer {api.keys['beta']}"},
        json={"model": "rlm", "messages": [{"role": "user", "content": "SLOW"}], "stream": True},
    ) as response:
        first = next(line for line in response.iter_lines() if line)
    run_id = json.loads(first.removeprefix("data: "))["id"].removeprefix("chatcmpl-")

    async def status() -> str | None:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            runs = {run.id: run for run in await store.runs("beta")}
            return runs[run_id].status if run_id in runs else None
        finally:
            await store.aclose()

    deadline = time.monotonic() + 10
    while asyncio.run(status()) == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert asyncio.run(status()) == "cancelled"

    async def audited() -> list[tuple[str, str]]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            records = await store.audit_records(tenant_name="beta")
            return [(r.action, r.actor) for r in records if r.target == run_id]
        finally:
            await store.aclose()

    prefix = api.keys["beta"][:12]
    assert asyncio.run(audited()) == [("run.create", prefix), ("run.cancel", prefix)]


def test_async_streaming(api: APIServer) -> None:
    async def main() -> str:
        async with openai.AsyncOpenAI(
            base_url=api.url, api_key=api.keys["acme"], max_retries=0
        ) as async_client:
            stream = await async_client.chat.completions.create(
                model="rlm", messages=QUESTION, extra_body={"context": "four"}, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()) == "4"


def test_litellm_openai_provider(api: APIServer) -> None:
    litellm = import_litellm()  # offline: its bundled price map
    reply = litellm.completion(
        model="openai/rlm",
        api_base=api.url,
        api_key=api.keys["acme"],
        messages=QUESTION,
        extra_body={"context": "0123456"},
        max_retries=0,
    )
    assert reply.choices[0].message.content == "7"
    assert reply.usage.total_tokens > 0
    chunks = litellm.completion(
        model="openai/rlm",
        api_base=api.url,
        api_key=api.keys["acme"],
        messages=QUESTION,
        extra_body={"context": "01"},
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "2"


def test_litellm_async_streaming(api: APIServer) -> None:
    litellm = import_litellm()

    async def answer() -> str:
        chunks = await litellm.acompletion(
            model="openai/rlm",
            api_base=api.url,
            api_key=api.keys["acme"],
            messages=QUESTION,
            extra_body={"context": "012"},
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in chunks])

    assert asyncio.run(answer()) == "3"


def test_models_are_the_profiles(api: APIServer) -> None:
    models = client(api).models.list()
    assert [m.id for m in models] == ["rlm", "short", "budget"]
    assert all(m.owned_by == "rlmrt" for m in models)


def test_a_run_a_limit_ends_says_it_is_partial(api: APIServer) -> None:
    reply = client(api).chat.completions.create(
        model="short", messages=[{"role": "user", "content": "NEVER ANSWER"}]
    )
    assert reply.choices[0].finish_reason == "length"
    rlm = (reply.model_extra or {})["rlm"]
    assert rlm["partial"] is True
    assert rlm["stop_reason"] == "max_iterations"


def test_a_spent_daily_budget_is_429_naming_it(api: APIServer) -> None:
    ask: dict[str, Any] = {"model": "budget", "messages": QUESTION}
    first = client(api).chat.completions.create(**ask)  # ~500 tokens at $1000/Mtok: $0.5
    assert (first.model_extra or {})["rlm"]["cost_usd"] > 0.01
    with pytest.raises(openai.RateLimitError) as raised:
        client(api).chat.completions.create(**ask)
    error = error_of(raised.value.response)
    assert error["type"] == "insufficient_quota" and error["code"] == "budget_exceeded"
    assert "daily" in error["message"]


def test_a_failed_model_is_an_error_not_an_answer(api: APIServer) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        client(api).chat.completions.create(
            model="rlm", messages=[{"role": "user", "content": "PLEASE FAIL"}]
        )
    assert raised.value.status_code == 502
    error = error_of(raised.value.response)
    assert error["code"] == "model_error"
    assert "ModelAuthError" in error["message"] and "run " in error["message"]
    assert PROVIDER_KEY not in raised.value.response.text
    with pytest.raises(openai.APIError) as streamed:
        list(
            client(api).chat.completions.create(
                model="rlm", messages=[{"role": "user", "content": "PLEASE FAIL"}], stream=True
            )
        )
    assert "failed" in str(streamed.value)
    assert PROVIDER_KEY not in str(streamed.value.body)


@pytest.mark.parametrize("key", ["", "rlm-not-a-key-at-all", "revoked", "expired"])
def test_bad_keys_get_401(api: APIServer, key: str) -> None:
    raw = api.keys.get(key, key)
    headers = {"Authorization": f"Bearer {raw}"} if raw else {}
    for method, path, body in (
        ("GET", "/models", None),
        ("POST", "/chat/completions", {"model": "rlm", "messages": QUESTION}),
    ):
        response = httpx.request(method, api.url + path, headers=headers, json=body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        error = error_of(response)
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"
        if raw:
            assert raw not in response.text
    if key == "revoked":
        assert "revoked" in error["message"]
    if key == "expired":
        assert "expired" in error["message"]
    with pytest.raises(openai.AuthenticationError):
        client(api, key or "rlm-x").models.list()


def test_unknown_model_is_404(api: APIServer) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(api).chat.completions.create(model="gpt-4o", messages=QUESTION)
    error = error_of(raised.value.response)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "'gpt-4o'" in error["message"] and "rlm" in error["message"]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": "rlm"}, "messages", "Field required"),
        ({"model": "rlm", "messages": []}, "messages", "at least 1"),
        (
            {"model": "rlm", "messages": [{"role": "assistant", "content": "hi"}]},
            "messages.0.role",
            "user's question",
        ),
        ({"model": "rlm", "messages": [{"role": "user", "content": "  "}]}, "messages.0", "empty"),
        (
            {"model": "rlm", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages.0.content",
            "only text parts",
        ),
        (
            {"model": "rlm", "messages": QUESTION, "context": [1, 2]},
            "context",
            "context: must be a string, a list of strings or an object",
        ),
    ],
)
def test_bad_bodies_get_400_naming_the_field(
    api: APIServer, body: dict[str, Any], param: str, words: str
) -> None:
    response = httpx.post(
        f"{api.url}/chat/completions",
        headers={"Authorization": f"Bearer {api.keys['acme']}"},
        json=body,
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]


def test_not_json_and_unknown_routes(api: APIServer) -> None:
    auth = {"Authorization": f"Bearer {api.keys['acme']}", "Content-Type": "application/json"}
    response = httpx.post(f"{api.url}/chat/completions", headers=auth, content=b"{not json")
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"
    missing = httpx.get(f"{api.url}/nothing-here", headers=auth)
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    assert error_of(missing)["message"] == "no such route: GET /v1/nothing-here"
    wrong_method = httpx.get(f"{api.url}/chat/completions", headers=auth)
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"
    # a path with routes of several methods lists them all (not only its first route's)
    one_file = httpx.options(f"{api.url}/files/file-{'0' * 32}", headers=auth)
    assert one_file.status_code == 405
    assert one_file.headers["allow"] == "GET, DELETE"


def test_health_ready_and_metrics(api: APIServer) -> None:
    assert httpx.get(f"{api.root}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api.root}/readyz").json() == {"status": "ready"}
    schema = httpx.get(f"{api.root}/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/models", "/healthz"} <= set(schema["paths"])
    client(api).chat.completions.create(model="rlm", messages=QUESTION)
    metrics = httpx.get(f"{api.root}/metrics")
    assert metrics.status_code == 200
    assert "rlm_runs_total" in metrics.text or "rlm_runs_created" in metrics.text


def scraped_requests(api: APIServer) -> dict[tuple[str, str, str], float]:
    """`/metrics`' request counts by (method, route, status), and each (method, route)'s
    duration count as (method, route, "seconds")."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{api.root}/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "rlm_http_requests_total":
                counts[(labels["method"], labels["route"], labels["status"])] = sample.value
            elif sample.name == "rlm_http_request_duration_seconds_count":
                counts[(labels["method"], labels["route"], "seconds")] = sample.value
    return counts


def test_http_requests_are_counted_by_route_and_status(api: APIServer) -> None:
    before = scraped_requests(api)
    client(api).chat.completions.create(model="rlm", messages=QUESTION)
    for _chunk in client(api).chat.completions.create(model="rlm", messages=QUESTION, stream=True):
        pass
    refused = httpx.post(
        f"{api.url}/chat/completions", headers={"Authorization": "Bearer rlm-nope"}, json={}
    )
    assert refused.status_code == 401
    auth = {"Authorization": f"Bearer {api.keys['acme']}"}
    assert httpx.get(f"{api.url}/runs/run-0000deadbeef", headers=auth).status_code == 404
    assert httpx.get(f"{api.url}/nothing-0000deadbeef", headers=auth).status_code == 404
    # a method outside the seven that every HTTP parser passes on (httptools answers 400
    # itself to tokens it does not know; h11 passes any token on)
    made_up = httpx.request("PROPFIND", f"{api.url}/chat/completions", headers=auth)
    assert made_up.status_code == 405
    after = scraped_requests(api)

    def added(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert added(("POST", "/v1/chat/completions", "200")) == 2  # streamed or not
    assert added(("POST", "/v1/chat/completions", "401")) == 1
    assert added(("POST", "/v1/chat/completions", "seconds")) == 3
    assert added(("GET", "/v1/runs/{run_id}", "404")) == 1  # the route's template
    assert added(("GET", "unmatched", "404")) == 1
    assert added(("other", "/v1/chat/completions", "405")) == 1  # made-up methods: one label
    assert not [key for key in after if "deadbeef" in "".join(key).lower()]  # never a path


def test_runs_are_recorded_per_tenant_and_keys_only_hashed(api: APIServer) -> None:
    client(api, "beta").chat.completions.create(
        model="rlm", messages=QUESTION, extra_body={"context": "b"}
    )
    client(api, "beta").chat.completions.create(
        model="short", messages=[{"role": "user", "content": "NEVER ANSWER"}]
    )

    async def read() -> tuple[list[Any], list[Any]]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            return list(await store.runs("beta")), list(await store.runs("acme"))
        finally:
            await store.aclose()

    # a completion's end is written right after its answer was sent: wait for it
    deadline = time.monotonic() + 10
    beta, acme = asyncio.run(read())
    while any(run.status == "running" for run in beta[:2]) and time.monotonic() < deadline:
        time.sleep(0.05)
        beta, acme = asyncio.run(read())
    assert [run.profile for run in beta[:2]] == ["short", "rlm"]
    assert [run.status for run in beta[:2]] == ["partial", "completed"]
    done = beta[1]
    assert done.stop_reason == "final" and done.finished_at is not None
    assert done.input_tokens > 0 and done.output_tokens > 0 and done.model_calls == 1
    assert done.finished_at >= done.created_at
    assert {run.tenant_id for run in beta} == {beta[0].tenant_id}
    assert (api.home / "runs" / f"{done.id}.jsonl").is_file()  # its trajectory, as any run
    assert beta[0].tenant_id not in {run.tenant_id for run in acme}
    # every file of the database, the server's log: the keys are nowhere in clear
    files = [p for p in api.home.iterdir() if p.name.startswith("server.db")]
    assert files
    for path in [*files, api.log]:
        data = path.read_bytes()
        for raw in api.keys.values():
            assert raw.encode() not in data, f"a key in {path.name}"
        assert PROVIDER_KEY.encode() not in data
