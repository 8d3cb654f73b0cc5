"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It is a real HTTP/1.1 server (asyncio streams, keep-alive, Content-Length request
bodies) running its own event loop in a daemon thread, so it serves sync tests,
async tests and benchmarks alike. Replies come from a handler you write::

    def handler(req: ChatRequest) -> Reply | str:
        return "FINAL(42)" if req.is_rlm_root else "sub answer"

    with ScriptedOpenAIServer(handler, latency_s=0.01) as server:
        client = SomeClient(api_base=server.url)   # http://127.0.0.1:<port>/v1

Routes: ``POST /v1/chat/completions`` (JSON, or SSE with ``"stream": true``; a usage
chunk when ``stream_options.include_usage`` is set), ``POST /v1/embeddings`` (vectors
from ``embedder``, by default `word_embedder()`: hashed words, so texts sharing words
are alike) and ``GET /v1/models``. A reply
with a status other than 200 is sent as an OpenAI-style error; ``Reply.fault``
simulates broken servers. A handler that raises gives HTTP 500 with the exception
text in the body. The handler runs on the server's thread: keep it quick and do not
block in it (use ``Reply.delay_s`` or ``latency_s`` to make replies slow).

Command line (serves one fixed reply; prints the URL on one line)::

    python -m rlmrt.testing.server --port 8000 --latency-ms 5 --reply "FINAL(done)"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from rlmrt.testing.scripts import (
    ChatRequest,
    Fault,
    Handler,
    Reply,
    ScriptedReplies,
    scripted,
)

__all__ = [
    "ChatRequest",
    "Fault",
    "Handler",
    "Reply",
    "ScriptedOpenAIServer",
    "ScriptedReplies",
    "scripted",
    "word_embedder",
]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_WORDS = re.compile(r"\s*\S+\s*|\s+")
_MAX_HEADER_BYTES = 1 << 20


def word_embedder(
    *, dims: int = 64, synonyms: Mapping[str, str] | None = None
) -> Callable[[str], list[float]]:
    """An embedder for tests: a text's vector counts its lowercased words, each hashed
    to one of `dims` components, normalized to length 1. A word in `synonyms` counts as
    the word it maps to ("bill" -> "invoice": a text with either is alike)."""
    same = {word.lower(): other.lower() for word, other in (synonyms or {}).items()}

    def vector(text: str) -> list[float]:
        counts = [0.0] * dims
        for word in re.findall(r"\w+", text.lower()):
            counts[zlib.crc32(same.get(word, word).encode()) % dims] += 1.0
        norm = sum(c * c for c in counts) ** 0.5
        return [c / norm for c in counts] if norm else counts

    return vector


class _Closed(Exception):
    """The connection must be closed (client went away or a fault says so)."""


class ScriptedOpenAIServer:
    """An OpenAI-compatible HTTP server with scripted replies, on its own thread.

    Use it as a context manager or call `start()` / `stop()`. `requests` lists the
    chat requests received, in order; `max_in_flight` is the highest number of chat
    requests served at once since the start or the last `reset_stats()`.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        latency_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = ("scripted-model",),
        embedder: Callable[[str], list[float]] | None = None,
    ) -> None:
        self.handler = handler
        self.embedder = embedder or word_embedder()
        self.latency_s = latency_s
        self.host = host
        self.models = list(models)
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._embedding_requests: list[dict[str, Any]] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, e.g. ``http://127.0.0.1:5123/v1``."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self.host}:{self._port}/v1"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._port

    def start(self) -> ScriptedOpenAIServer:
        """Start serving; returns when the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except OSError as exc:  # e.g. port in use: raised by start() below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="rlmrt-scripted-openai", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving: close every connection (hanging requests too). Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None
        self._server = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- statistics ------------------------------------------------------------------

    @property
    def requests(self) -> list[ChatRequest]:
        """A copy of the chat requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        """A copy of the bodies of the embedding requests received so far, in order."""
        with self._lock:
            return list(self._embedding_requests)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def reset_stats(self) -> None:
        """Forget the requests received and the in-flight high-water mark."""
        with self._lock:
            self._requests.clear()
            self._embedding_requests.clear()
            self._max_in_flight = self._in_flight

    # -- serving ---------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._port, limit=_MAX_HEADER_BYTES
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        server = self._server
        if server is not None:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            keep_alive = True
            while keep_alive:
                keep_alive = await self._serve_one(reader, writer)
                await writer.drain()
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or a fault closes the connection: nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): close the connection below; the task ends normally
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            raise _Closed from exc  # clean close between requests
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = [*lines[0].split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._send(writer, 411, _error_json("chunked request bodies are not supported", 411))
            return False
        length = int(headers.get("content-length", "0") or "0")
        raw = await reader.readexactly(length) if length else b""
        path = path.split("?", 1)[0].rstrip("/")

        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                self._send(writer, 405, _error_json(f"use POST for {path}", 405), keep_alive)
                return keep_alive
            return await self._chat(raw, headers, reader, writer, keep_alive)
        if path in ("/v1/embeddings", "/embeddings") and method == "POST":
            self._embeddings(raw, writer, keep_alive)
            return keep_alive
        if path in ("/v1/models", "/models") and method == "GET":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "rlmrt"} for m in self.models
            ]
            self._send(writer, 200, _dumps({"object": "list", "data": data}), keep_alive)
            return keep_alive
        self._send(writer, 404, _error_json(f"no route for {method} {path}", 404), keep_alive)
        return keep_alive

    async def _chat(
        self,
        raw: bytes,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            request = ChatRequest(
                model=str(body.get("model", "")),
                messages=list(body.get("messages") or []),
                stream=bool(body.get("stream", False)),
                body=body,
                headers=headers,
            )
        except ValueError as exc:
            self._send(writer, 400, _error_json(f"invalid request body: {exc}", 400), keep_alive)
            return keep_alive

        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            reply = self._run_handler(request)
            wait = self.latency_s + reply.delay_s
            if wait > 0:
                await asyncio.sleep(wait)
            return await self._answer(request, reply, reader, writer, keep_alive)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _embeddings(self, raw: bytes, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
        try:
            body = json.loads(raw)
            texts = body["input"]
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError("input must be a string or a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(writer, 400, _error_json(f"invalid request body: {exc}", 400), keep_alive)
            return
        with self._lock:
            self._embedding_requests.append(body)
        try:
            vectors = [self.embedder(text) for text in texts]
        except Exception as exc:  # noqa: BLE001 - shown to the test as an HTTP 500
            message = f"scripted embedder raised {type(exc).__name__}: {exc}"
            self._send(writer, 500, _error_json(message, 500), keep_alive)
            return
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors)
        ]
        tokens = sum(len(text) // 4 + 1 for text in texts)
        payload = {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send(writer, 200, _dumps(payload), keep_alive)

    def _run_handler(self, request: ChatRequest) -> Reply:
        try:
            result: object = self.handler(request)
        except Exception as exc:  # noqa: BLE001 - shown to the test as an HTTP 500
            message = f"scripted handler raised {type(exc).__name__}: {exc}"
            return Reply(status=500, error_body=_error_body(message, 500))
        if isinstance(result, str):
            return Reply(text=result)
        if isinstance(result, Reply):
            return result
        message = f"scripted handler returned {type(result).__name__}, expected Reply or str"
        return Reply(status=500, error_body=_error_body(message, 500))

    async def _answer(
        self,
        request: ChatRequest,
        reply: Reply,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        extra = reply.headers or {}
        if reply.fault == "close":
            raise _Closed
        if reply.fault == "hang":
            while await reader.read(65536):
                pass  # wait for the client to give up (or stop() to cancel us)
            raise _Closed
        if reply.status != 200:
            body = reply.error_body or _error_body(reply.text or None, reply.status)
            self._send(writer, reply.status, _dumps(body), keep_alive, extra)
            return keep_alive

        completion_id = f"chatcmpl-scripted-{next(self._ids)}"
        prompt_tokens = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else request.prompt_tokens_estimate()
        )
        completion_tokens = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else len(reply.text) // 4 + 1
        )
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            **(reply.usage_details or {}),
        }
        model = request.model or "scripted-model"
        if request.stream:
            self._stream(request, reply, completion_id, model, usage, writer, keep_alive, extra)
            if reply.fault == "drop_stream":
                await writer.drain()
                raise _Closed
            return keep_alive

        if reply.fault == "malformed_json":
            self._send(
                writer,
                200,
                b'{"id": "' + completion_id.encode() + b'", "choices": [',
                keep_alive,
                extra,
            )
            return keep_alive
        payload = _dumps(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
        if reply.fault == "drop_stream":
            head = _head(200, "application/json", len(payload), keep_alive, extra)
            writer.write(head + payload[: len(payload) // 2])
            await writer.drain()
            raise _Closed
        self._send(writer, 200, payload, keep_alive, extra)
        return keep_alive

    def _stream(
        self,
        request: ChatRequest,
        reply: Reply,
        completion_id: str,
        model: str,
        usage: dict[str, Any],
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        extra: Mapping[str, str],
    ) -> None:
        options = request.body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                data["usage"] = None
            return b"data: " + _dumps(data) + b"\n\n"

        pieces = _WORDS.findall(reply.text)
        if reply.fault == "drop_stream":
            pieces = pieces[: len(pieces) // 2] or pieces[:1]
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in pieces]
        if reply.fault == "malformed_json":
            events.append(b'data: {"id": "' + completion_id.encode() + b'", "choices": [\n\n')
        if reply.fault != "drop_stream":
            events.append(chunk({}, "stop"))
            if include_usage:
                final = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                events.append(b"data: " + _dumps(final) + b"\n\n")
            events.append(b"data: [DONE]\n\n")
        body = b"".join(events)
        head = _head(200, "text/event-stream", None, keep_alive, extra)
        tail = b"" if reply.fault == "drop_stream" else b"0\r\n\r\n"
        writer.write(head + f"{len(body):x}\r\n".encode() + body + b"\r\n" + tail)

    def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: bytes,
        keep_alive: bool = True,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        # headers and body in one write: one segment for small replies (TCP_NODELAY is on)
        writer.write(_head(status, "application/json", len(payload), keep_alive, extra) + payload)


def _head(
    status: int,
    content_type: str,
    length: int | None,
    keep_alive: bool,
    extra: Mapping[str, str] | None,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
        lines.append("Cache-Control: no-cache")
    else:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (extra or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _error_body(message: str | None, status: int) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    text = message or f"scripted error {status} {_REASONS.get(status, '')}".strip()
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def _error_json(message: str, status: int) -> bytes:
    return _dumps(_error_body(message, status))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one fixed reply until interrupted; print the base URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m rlmrt.testing.server", description=main.__doc__
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each reply")
    parser.add_argument("--reply", default="FINAL(ok)", help="the text of every reply")
    args = parser.parse_args(argv)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    reply: str = args.reply
    with ScriptedOpenAIServer(
        lambda _: reply, latency_s=args.latency_ms / 1000, port=args.port
    ) as server:
        print(server.url, flush=True)
        done.wait()


if __name__ == "__main__":
    main()
