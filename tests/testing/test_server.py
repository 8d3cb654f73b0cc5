"""The scripted OpenAI-compatible server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer, ScriptedReplies, scripted

ROOT_SYSTEM = "You are an RLM. When done, call FINAL_VAR(name)."
SRC = Path(__file__).resolve().parents[2] / "src"


def chat(text: str = "hi", *, stream: bool = False, usage: bool = False, **extra: object) -> dict:
    body: dict = {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return body


def sse_events(raw: str) -> list[str]:
    return [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]


@pytest.fixture
def echo() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(lambda req: f"echo: {req.last_user_text}") as server:
        yield server


def test_json_completion(echo: ScriptedOpenAIServer) -> None:
    with httpx.Client(base_url=echo.url) as client:
        response = client.post("/chat/completions", json=chat("hello there"))
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "m1"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello there"}
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == len("hello there") // 4 + 1
    assert usage["completion_tokens"] == len("echo: hello there") // 4 + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    [request] = echo.requests
    assert request.model == "m1"
    assert request.stream is False
    assert request.headers["content-type"] == "application/json"
    assert request.body["messages"][0]["content"] == "hello there"


def test_explicit_token_counts() -> None:
    reply = Reply(text="x", prompt_tokens=123, completion_tokens=7)
    with ScriptedOpenAIServer(lambda _: reply) as server:
        data = httpx.post(f"{server.url}/chat/completions", json=chat()).json()
    assert data["usage"] == {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}


def test_sse_stream_with_usage_chunk(echo: ScriptedOpenAIServer) -> None:
    response = httpx.post(
        f"{echo.url}/chat/completions", json=chat("a b c", stream=True, usage=True)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: a b c"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len("echo: a b c") // 4 + 1
    assert all(c["usage"] is None for c in chunks[:-1])


def test_sse_stream_without_usage(echo: ScriptedOpenAIServer) -> None:
    response = httpx.post(f"{echo.url}/chat/completions", json=chat("x", stream=True))
    chunks = [json.loads(e) for e in sse_events(response.text)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_models_route_and_unknown_route(echo: ScriptedOpenAIServer) -> None:
    with httpx.Client(base_url=echo.url) as client:
        models = client.get("/models").json()
        missing = client.get("/nothing")
        wrong_method = client.get("/chat/completions")
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["scripted-model"]
    assert missing.status_code == 404
    assert "no route" in missing.json()["error"]["message"]
    assert wrong_method.status_code == 405
    assert echo.requests == []


def test_invalid_request_body_is_400(echo: ScriptedOpenAIServer) -> None:
    response = httpx.post(f"{echo.url}/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert "invalid request body" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, "invalid_request_error", "invalid_api_key"),
        (404, "invalid_request_error", "model_not_found"),
        (429, "requests", "rate_limit_exceeded"),
        (503, "server_error", None),
    ],
)
def test_error_statuses(status: int, kind: str, code: str | None) -> None:
    reply = Reply(text="nope", status=status, headers={"retry-after": "0"})
    with ScriptedOpenAIServer(lambda _: reply) as server:
        response = httpx.post(f"{server.url}/chat/completions", json=chat())
    assert response.status_code == status
    assert response.headers["retry-after"] == "0"
    assert response.json() == {
        "error": {"message": "nope", "type": kind, "param": None, "code": code}
    }


def test_custom_error_body() -> None:
    body = {"error": {"message": "custom", "type": "x", "code": "y"}}
    with ScriptedOpenAIServer(lambda _: Reply(status=400, error_body=body)) as server:
        response = httpx.post(f"{server.url}/chat/completions", json=chat())
    assert response.status_code == 400
    assert response.json() == body


def test_handler_exception_is_500_with_text() -> None:
    def broken(req: ChatRequest) -> str:
        raise ValueError("bug in the test script")

    with ScriptedOpenAIServer(broken) as server:
        response = httpx.post(f"{server.url}/chat/completions", json=chat())
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert "ValueError" in message
    assert "bug in the test script" in message


def test_handler_wrong_return_type_is_500() -> None:
    with ScriptedOpenAIServer(lambda _: 42) as server:  # type: ignore[arg-type,return-value]
        response = httpx.post(f"{server.url}/chat/completions", json=chat())
    assert response.status_code == 500
    assert "expected Reply or str" in response.json()["error"]["message"]


def test_fault_malformed_json() -> None:
    with ScriptedOpenAIServer(lambda _: Reply(text="x", fault="malformed_json")) as server:
        response = httpx.post(f"{server.url}/chat/completions", json=chat())
        streamed = httpx.post(f"{server.url}/chat/completions", json=chat(stream=True))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    bad = [e for e in sse_events(streamed.text) if e != "[DONE]"]
    with pytest.raises(json.JSONDecodeError):
        [json.loads(e) for e in bad]


def test_fault_drop_stream() -> None:
    reply = Reply(text="one two three four five six", fault="drop_stream")
    with ScriptedOpenAIServer(lambda _: reply) as server:
        received: list[bytes] = []

        def read_all() -> None:
            url = f"{server.url}/chat/completions"
            with httpx.stream("POST", url, json=chat(stream=True)) as response:
                received.extend(response.iter_bytes())

        with pytest.raises(httpx.RemoteProtocolError):
            read_all()
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{server.url}/chat/completions", json=chat())
    text = b"".join(received).decode()
    assert '"content":"one "' in text
    assert "[DONE]" not in text
    assert "six" not in text


def test_fault_close() -> None:
    with ScriptedOpenAIServer(lambda _: Reply(fault="close")) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{server.url}/chat/completions", json=chat())
        assert len(server.requests) == 1


def test_fault_hang_until_client_timeout() -> None:
    with ScriptedOpenAIServer(lambda _: Reply(fault="hang")) as server:
        start = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/chat/completions", json=chat(), timeout=0.3)
        assert 0.25 < time.perf_counter() - start < 2


def test_stop_ends_a_hanging_request() -> None:
    server = ScriptedOpenAIServer(lambda _: Reply(fault="hang")).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{server.url}/chat/completions", json=chat(), timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while not server.requests:
        time.sleep(0.005)
    start = time.perf_counter()
    server.stop()
    thread.join(5)
    assert time.perf_counter() - start < 2
    assert isinstance(errors[0], httpx.RemoteProtocolError)


def test_delay_and_latency_add_up() -> None:
    with ScriptedOpenAIServer(lambda _: Reply(text="x", delay_s=0.1), latency_s=0.1) as server:
        start = time.perf_counter()
        httpx.post(f"{server.url}/chat/completions", json=chat())
        assert time.perf_counter() - start >= 0.2


async def test_concurrency_and_max_in_flight() -> None:
    with ScriptedOpenAIServer(lambda r: r.last_user_text, latency_s=0.2) as server:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:
            start = time.perf_counter()
            responses = await asyncio.gather(
                *(client.post("/chat/completions", json=chat(str(i))) for i in range(64))
            )
            elapsed = time.perf_counter() - start
        assert elapsed < 1.5  # 64 x 0.2 s served concurrently, not one after another
        texts = sorted(r.json()["choices"][0]["message"]["content"] for r in responses)
        assert texts == sorted(str(i) for i in range(64))
        assert server.max_in_flight == 64
        assert len(server.requests) == 64
        server.reset_stats()
        assert server.requests == []
        assert server.max_in_flight == 0


def test_keep_alive_reuses_one_connection(echo: ScriptedOpenAIServer) -> None:
    ports: set[int] = set()
    with httpx.Client(base_url=echo.url) as client:
        for i in range(5):
            with client.stream("POST", "/chat/completions", json=chat(str(i))) as response:
                stream = response.extensions["network_stream"]
                ports.add(stream.get_extra_info("client_addr")[1])
                response.read()
            streamed = client.post("/chat/completions", json=chat(stream=True, usage=True))
            assert sse_events(streamed.text)[-1] == "[DONE]"
    assert len(ports) == 1
    assert len(echo.requests) == 10


def test_connection_close_header_is_honoured(echo: ScriptedOpenAIServer) -> None:
    with socket.create_connection(("127.0.0.1", echo.port)) as sock:
        body = json.dumps(chat()).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in data


def test_requests_helpers_and_scripted_replies() -> None:
    handler = scripted(
        root=["first", Reply(text="second")], sub=lambda r: f"sub:{r.last_user_text}"
    )
    root_messages = [
        {"role": "system", "content": ROOT_SYSTEM},
        {"role": "user", "content": [{"type": "text", "text": "question"}]},
    ]
    with ScriptedOpenAIServer(handler) as server, httpx.Client(base_url=server.url) as client:

        def ask(messages: list[dict]) -> str:
            response = client.post("/chat/completions", json={"model": "m", "messages": messages})
            return str(response.json()["choices"][0]["message"]["content"])

        assert ask(root_messages) == "first"
        assert ask([{"role": "user", "content": "small"}]) == "sub:small"
        assert ask(root_messages) == "second"
        assert handler.root_remaining == 0
        third = client.post("/chat/completions", json={"model": "m", "messages": root_messages})
        assert third.status_code == 500
        assert "no scripted root reply left" in third.json()["error"]["message"]
        first = server.requests[0]
        assert first.is_rlm_root
        assert first.system_text == ROOT_SYSTEM
        assert first.last_user_text == "question"
        assert not server.requests[1].is_rlm_root


def test_scripted_sub_list_and_constant() -> None:
    sub_call = ChatRequest(
        model="m", messages=[{"role": "user", "content": "q"}], stream=False, body={}, headers={}
    )
    listed = ScriptedReplies(sub=["a", "b"])
    assert [listed(sub_call), listed(sub_call)] == ["a", "b"]
    with pytest.raises(LookupError, match="no scripted sub reply left"):
        listed(sub_call)
    assert ScriptedReplies(sub="same")(sub_call) == "same"
    with pytest.raises(LookupError, match="no sub replies were scripted"):
        ScriptedReplies()(sub_call)


def test_lifecycle_errors_and_fixed_port() -> None:
    server = ScriptedOpenAIServer(lambda _: "x")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()  # stopping a server that never started is a no-op
    with server:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        port = server.port
        with pytest.raises(OSError, match="in use"), ScriptedOpenAIServer(lambda _: "y", port=port):
            pass
    server.stop()
    with ScriptedOpenAIServer(lambda _: "z", port=port) as again:
        assert again.url == f"http://127.0.0.1:{port}/v1"
        assert httpx.post(f"{again.url}/chat/completions", json=chat()).status_code == 200


def test_stop_leaves_no_threads() -> None:
    before = threading.active_count()
    for _ in range(3):
        with ScriptedOpenAIServer(lambda _: "x") as server:
            httpx.post(f"{server.url}/chat/completions", json=chat())
    assert threading.active_count() == before


def test_cli_serves_a_fixed_reply() -> None:
    env = {"PYTHONPATH": str(SRC), "PYTHONWARNINGS": "error"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlmrt.testing.server",
            "--reply",
            "FINAL(cli)",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        data = httpx.post(f"{url}/chat/completions", json=chat()).json()
        assert data["choices"][0]["message"]["content"] == "FINAL(cli)"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert stderr == ""
