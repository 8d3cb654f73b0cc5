"""The behaviour every HTTP model client must show against the scripted server.

A client's test module subclasses `ModelClientContract` and provides the
`make_client` fixture; the class's tests then run against that client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from rlmrt.errors import (
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelResponseError,
)
from rlmrt.llm import ModelClient, RetryPolicy
from rlmrt.llm.base import Message
from rlmrt.llm.media import media_parts, user_message
from rlmrt.llm.structured import json_schema_format
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

MakeClient = Callable[..., ModelClient]
MESSAGES: list[Message] = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is in the context?"},
]


class ReplyQueue:
    """A handler that answers with queued replies in order, then with `default`."""

    def __init__(self, default: Reply | str = "hello world from the server") -> None:
        self.default = default
        self._queue: list[Reply | str] = []
        self._lock = threading.Lock()

    def push(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(replies)

    def __call__(self, request: ChatRequest) -> Reply | str:
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default


def fast_retry(max_retries: int = 3, **kw: Any) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, base_delay_s=0.01, max_delay_s=0.02, **kw)


class ModelClientContract:
    """Subclasses define `make_client(api_base, *, model=..., retry=..., **kw)`."""

    async def test_plain_completion(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(text="the answer", prompt_tokens=321, completion_tokens=12))
        async with make_client(server.url, model="openai/m1") as client:
            reply = await client.complete(MESSAGES)
        assert reply.text == "the answer"
        assert (reply.input_tokens, reply.output_tokens) == (321, 12)
        assert reply.model == "openai/m1"
        assert reply.finish_reason == "stop"
        [request] = server.requests
        assert request.model == "m1"
        assert request.stream is False
        assert request.messages == MESSAGES
        assert request.headers["authorization"] == "Bearer test-key"

    @pytest.mark.parametrize("streamed", [False, True])
    async def test_content_parts_reach_the_server_as_they_are(
        self,
        make_client: MakeClient,
        server: ScriptedOpenAIServer,
        replies: ReplyQueue,
        streamed: bool,
    ) -> None:
        """Issue 19: an image and a recording sent with a prompt, in OpenAI's format."""
        parts = media_parts(
            [{"format": "png", "data": "iVBORw0KGgo="}], [{"format": "wav", "data": "UklGRg=="}]
        )
        message = user_message("Describe both.", parts)
        replies.push("a picture and a sound")
        async with make_client(server.url, model="openai/m1") as client:
            reply = await client.complete(
                [MESSAGES[0], message], on_delta=(lambda _: None) if streamed else None
            )
        assert reply.text == "a picture and a sound"
        [request] = server.requests
        assert request.messages[1] == {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe both."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ],
        }

    async def test_streaming_with_deltas_and_usage(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        text = "one two three four five"
        replies.push(Reply(text=text, prompt_tokens=40, completion_tokens=5))
        deltas: list[str] = []
        async with make_client(server.url) as client:
            reply = await client.complete(MESSAGES, on_delta=deltas.append)
        assert reply.text == text
        assert "".join(deltas) == text
        assert len(deltas) == 5
        assert (reply.input_tokens, reply.output_tokens) == (40, 5)
        assert reply.finish_reason == "stop"
        [request] = server.requests
        assert request.stream is True
        assert request.body["stream_options"] == {"include_usage": True}

    @pytest.mark.parametrize("streamed", [False, True])
    async def test_cache_and_reasoning_counts_are_read_from_the_usage(
        self,
        make_client: MakeClient,
        server: ScriptedOpenAIServer,
        replies: ReplyQueue,
        streamed: bool,
    ) -> None:
        details = {
            "prompt_tokens_details": {"cached_tokens": 600, "cache_creation_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
        replies.push(
            Reply(text="ok", prompt_tokens=1000, completion_tokens=50, usage_details=details),
            Reply(text="ok", prompt_tokens=10, completion_tokens=2),
        )
        on_delta = (lambda _: None) if streamed else None
        async with make_client(server.url) as client:
            cached = await client.complete(MESSAGES, on_delta=on_delta)
            plain = await client.complete(MESSAGES, on_delta=on_delta)
        assert (cached.input_tokens, cached.output_tokens) == (1000, 50)
        assert (cached.cache_read_tokens, cached.cache_write_tokens) == (600, 100)
        assert cached.reasoning_tokens == 30
        assert (plain.cache_read_tokens, plain.cache_write_tokens, plain.reasoning_tokens) == (
            0,
            0,
            0,
        )

    async def test_model_override_and_sampling_settings(
        self, make_client: MakeClient, server: ScriptedOpenAIServer
    ) -> None:
        async with make_client(server.url, temperature=0.3, seed=7) as client:
            reply = await client.complete(MESSAGES, model="openai/other-model")
            await client.complete(MESSAGES)
        assert reply.model == "openai/other-model"
        first, second = server.requests
        assert first.model == "other-model"
        assert second.model == "m"
        assert first.body["temperature"] == 0.3
        assert first.body["seed"] == 7

    async def test_retries_500_then_succeeds(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(status=500, text="boom"), Reply(status=503), "recovered")
        async with make_client(server.url, retry=fast_retry(3)) as client:
            reply = await client.complete(MESSAGES)
        assert reply.text == "recovered"
        assert reply.attempts == 3
        assert len(server.requests) == 3

    async def test_500_after_all_retries_keeps_status_and_body(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.default = Reply(status=500, text="always broken")
        async with make_client(server.url, retry=fast_retry(2)) as client:
            with pytest.raises(ModelError) as caught:
                await client.complete(MESSAGES)
        assert type(caught.value) is ModelError
        assert caught.value.status == 500
        assert "always broken" in (caught.value.body or "")
        assert "always broken" in str(caught.value)
        assert "after 3 attempts" in str(caught.value)
        assert len(server.requests) == 3

    async def test_429_honours_retry_after(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        # A huge backoff: finishing quickly proves Retry-After set the wait instead.
        retry = RetryPolicy(max_retries=2, base_delay_s=30, max_delay_s=30)
        limited = Reply(status=429, text="slow down", headers={"Retry-After": "0.05"})
        replies.push(limited, limited, "finally")
        start = time.perf_counter()
        async with make_client(server.url, retry=retry) as client:
            reply = await client.complete(MESSAGES)
        elapsed = time.perf_counter() - start
        assert reply.text == "finally"
        assert len(server.requests) == 3
        assert 0.1 <= elapsed < 5

    async def test_retry_after_is_capped(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        retry = fast_retry(1, max_retry_after_s=0.05)
        replies.push(Reply(status=429, headers={"retry-after": "3600"}), "ok")
        start = time.perf_counter()
        async with make_client(server.url, retry=retry) as client:
            assert (await client.complete(MESSAGES)).text == "ok"
        assert time.perf_counter() - start < 3

    async def test_429_after_all_retries(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.default = Reply(status=429, text="quota")
        async with make_client(server.url, retry=fast_retry(1)) as client:
            with pytest.raises(ModelError, match="HTTP 429") as caught:
                await client.complete(MESSAGES)
        assert caught.value.status == 429
        assert len(server.requests) == 2

    async def test_401_is_not_retried(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(status=401, text="Incorrect API key provided"))
        async with make_client(server.url) as client:
            with pytest.raises(ModelAuthError) as caught:
                await client.complete(MESSAGES)
        message = str(caught.value)
        assert "Incorrect API key provided" in message
        assert "OPENAI_API_KEY" in message
        assert "api_key=" in message
        assert caught.value.status == 401
        assert len(server.requests) == 1

    async def test_404_is_not_retried(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(status=404, text="The model `nope` does not exist"))
        async with make_client(server.url, model="openai/nope") as client:
            with pytest.raises(ModelNotFoundError, match="does not exist") as caught:
                await client.complete(MESSAGES)
        assert "'openai/nope'" in str(caught.value)
        assert caught.value.status == 404
        assert len(server.requests) == 1

    async def test_400_is_not_retried(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(status=400, text="context too long"))
        async with make_client(server.url) as client:
            with pytest.raises(ModelError, match="context too long") as caught:
                await client.complete(MESSAGES)
        assert caught.value.status == 400
        assert len(server.requests) == 1

    async def test_timeout_is_retried_then_connection_error(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.default = Reply(fault="hang")
        start = time.perf_counter()
        async with make_client(server.url, retry=fast_retry(1), request_timeout_s=0.3) as client:
            with pytest.raises(ModelConnectionError) as caught:
                await client.complete(MESSAGES)
        assert 0.55 < time.perf_counter() - start < 5
        assert server.url in str(caught.value)
        assert "0.3 s" in str(caught.value)
        assert len(server.requests) == 2

    async def test_malformed_json_is_a_response_error(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(text="x", fault="malformed_json"))
        async with make_client(server.url) as client:
            with pytest.raises(ModelResponseError, match="could not be understood"):
                await client.complete(MESSAGES)
        assert len(server.requests) == 1

    async def test_dropped_stream_is_a_response_error(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(text="alpha beta gamma delta", fault="drop_stream"))
        deltas: list[str] = []
        async with make_client(server.url) as client:
            with pytest.raises(ModelResponseError, match="broke off after 11 characters"):
                await client.complete(MESSAGES, on_delta=deltas.append)
        assert deltas == ["alpha ", "beta "]
        assert len(server.requests) == 1

    async def test_malformed_stream_is_a_response_error(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(text="alpha beta", fault="malformed_json"))
        async with make_client(server.url) as client:
            with pytest.raises(ModelResponseError):
                await client.complete(MESSAGES, on_delta=lambda _: None)
        assert len(server.requests) == 1

    async def test_closed_connection_is_retried(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(Reply(fault="close"), "after the drop")
        async with make_client(server.url, retry=fast_retry(2)) as client:
            assert (await client.complete(MESSAGES)).text == "after the drop"
        assert len(server.requests) == 2

    async def test_unreachable_server(self, make_client: MakeClient, dead_url: str) -> None:
        async with make_client(dead_url, retry=fast_retry(1)) as client:
            with pytest.raises(ModelConnectionError) as caught:
                await client.complete(MESSAGES)
        message = str(caught.value)
        assert f"could not reach the model server at {dead_url} (after 2 attempts)" in message

    async def test_callback_errors_propagate_unchanged(
        self, make_client: MakeClient, server: ScriptedOpenAIServer
    ) -> None:
        def explode(_: str) -> None:
            raise KeyError("from the callback")

        async with make_client(server.url) as client:
            with pytest.raises(KeyError, match="from the callback"):
                await client.complete(MESSAGES, on_delta=explode)
        assert len(server.requests) == 1

    async def test_64_concurrent_calls(
        self, make_client: MakeClient, server: ScriptedOpenAIServer
    ) -> None:
        server.latency_s = 0.2
        async with make_client(server.url) as client:
            results = await asyncio.gather(*(client.complete(MESSAGES) for _ in range(64)))
        assert len(results) == 64
        # all 64 were in flight at once: the concurrency itself, not a wall time that a
        # loaded machine stretches (speed is measured by bench/, never asserted here)
        assert server.max_in_flight == 64

    @pytest.mark.parametrize("streamed", [False, True])
    @pytest.mark.parametrize("words", [True, False], ids=["words", "one_word"])
    async def test_a_long_reply_is_cut_at_max_reply_chars(
        self,
        make_client: MakeClient,
        server: ScriptedOpenAIServer,
        replies: ReplyQueue,
        streamed: bool,
        words: bool,
    ) -> None:
        # 2 MB in many stream events, without repeats (LiteLLM stops those); or in one
        text = "".join(f"w{i} " for i in range(300_000)) if words else "A" * 2_000_000
        replies.push(text)
        deltas: list[str] = []
        async with make_client(server.url, max_reply_chars=5_000) as client:
            reply = await client.complete(MESSAGES, on_delta=deltas.append if streamed else None)
        assert reply.text == text[:5_000]
        assert reply.cut_at == 5_000
        assert reply.output_tokens > 0  # counted even when the usage was not read
        if streamed:
            assert "".join(deltas) == text[:5_000]

    async def test_a_reply_within_max_reply_chars_is_whole(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push("x" * 5_000)
        async with make_client(server.url, max_reply_chars=5_000) as client:
            reply = await client.complete(MESSAGES)
        assert (len(reply.text), reply.cut_at) == (5_000, None)

    async def test_a_seed_given_to_one_call_overrides_the_clients_own(
        self, make_client: MakeClient, server: ScriptedOpenAIServer
    ) -> None:
        async with make_client(server.url, seed=7) as client:
            await client.complete(MESSAGES, seed=8)
            await client.complete(MESSAGES)
        assert [r.body.get("seed") for r in server.requests] == [8, 7]

    async def test_max_tokens_is_sent_only_when_given(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        async with make_client(server.url) as client:
            await client.complete(MESSAGES, max_tokens=123)
            await client.complete(MESSAGES)
        assert server.requests[0].body["max_tokens"] == 123
        assert "max_tokens" not in server.requests[1].body

    async def test_response_format_is_sent_as_it_is_only_when_given(
        self, make_client: MakeClient, server: ScriptedOpenAIServer
    ) -> None:
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        asked = json_schema_format(schema, "list[Row] of v2")
        assert asked == {
            "type": "json_schema",
            "json_schema": {"name": "list_Row_of_v2", "schema": schema},
        }
        async with make_client(server.url) as client:
            await client.complete(MESSAGES, response_format=asked)
            await client.complete(MESSAGES)
        assert server.requests[0].body["response_format"] == asked
        assert "response_format" not in server.requests[1].body

    async def test_a_failed_call_says_how_many_requests_it_made(
        self, make_client: MakeClient, server: ScriptedOpenAIServer, replies: ReplyQueue
    ) -> None:
        replies.push(*[Reply(status=503, text="busy")] * 3)
        async with make_client(server.url, retry=fast_retry(2)) as client:
            with pytest.raises(ModelError) as caught:
                await client.complete(MESSAGES)
        assert caught.value.attempts == 3 == len(server.requests)
