"""The scripted model for bench/overhead.py, in its own process.

It wraps `rlmrt.testing.ScriptedOpenAIServer` (run it with the project's venv) with a
handler that plays the model for the counting task, in each runtime's own protocol:

* a sub-call (a lone user message starting with SUB_PREFIX) is answered with the true
  number of occurrences of the word in its text;
* the first root call is answered with the runtime's way of splitting the context into
  K chunks and sending them to one batched sub-call;
* the second root call (the first that carries an assistant turn) finishes the run;
* any further root call means something went wrong: it is recorded and answered with
  an answer containing "BENCH-ERROR" so the run ends and is reported as wrong.

Control is a line protocol on stdin/stdout, so the server's CPU never counts against
the runtime under test. The server prints ``{"url": ...}`` when it listens, then reads
one JSON command per line and answers one JSON line:

* ``{"cmd": "configure", "runtime": "rlms", "k": 8, "word": "w", "latency_ms": 50}``
* ``{"cmd": "stats"}``: max requests in flight, request counts and bytes received since
  the last configure/stats, then resets them.

End of stdin stops the server.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

FINISH_RLMS = """The total is printed above.
```repl
answer["content"] = str(total)
answer["ready"] = True
```"""
SUB_PREFIX = "count occurrences of {word} in this text: "
RUNTIMES = ("rlmrt", "rlms", "rlm-runtime")

# The root model's first reply for the paper-style runtimes (rlmrt and rlms share the
# REPL function names). Chunks end at a newline so the word is never cut in two.
SPLIT_CODE = """\
n = len(context)
cuts = [0] + [context.find("\\n", n * i // {k}) + 1 for i in range(1, {k})] + [n]
prompts = ["{prefix}" + context[cuts[i]:cuts[i + 1]] for i in range({k})]
counts = llm_query_batched(prompts)
total = sum(int(c) for c in counts)
print(total)"""


def split_points(text: str, k: int) -> list[int]:
    """The same cuts SPLIT_CODE makes, for the runtime whose model sends chunks itself."""
    n = len(text)
    return [0] + [text.find("\n", n * i // k) + 1 for i in range(1, k)] + [n]


@dataclass(frozen=True)
class ToolCallReply(Reply):
    """A reply made of tool calls: (name, arguments as a JSON string) pairs."""

    tool_calls: tuple[tuple[str, str], ...] = ()


class BenchServer(ScriptedOpenAIServer):
    """ScriptedOpenAIServer plus replies that carry tool calls (rlm-runtime needs them).

    `ScriptedOpenAIServer` only answers with text; until it grows tool-call replies,
    this overrides its non-streaming answer for `ToolCallReply` only.
    """

    async def _answer(
        self, request: ChatRequest, reply: Reply, reader: Any, writer: Any, keep_alive: bool
    ) -> bool:
        if not isinstance(reply, ToolCallReply):
            return await super()._answer(request, reply, reader, writer, keep_alive)
        calls = [
            {
                "id": f"call_bench_{i}",
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            for i, (name, args) in enumerate(reply.tool_calls)
        ]
        prompt_tokens = request.prompt_tokens_estimate()
        completion_tokens = sum(len(args) for _, args in reply.tool_calls) // 4 + 1
        payload = json.dumps(
            {
                "id": f"chatcmpl-bench-{time.monotonic_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model or "bench-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": calls},
                        "logprobs": None,
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            separators=(",", ":"),
        ).encode()
        self._send(writer, 200, payload, keep_alive)
        return keep_alive


class CountingModel:
    """The handler: plays the root and sub models for the configured runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runtime = "rlms"
        self.k = 8
        self.word = "word"
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.root_calls = 0
        self.sub_calls = 0
        self.errors: list[str] = []

    def configure(self, runtime: str, k: int, word: str) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; expected one of {RUNTIMES}")
        with self._lock:
            self.runtime, self.k, self.word = runtime, k, word
            self._reset_counts()

    def take_counts(self) -> dict[str, Any]:
        with self._lock:
            counts = {
                "root_calls": self.root_calls,
                "sub_calls": self.sub_calls,
                "errors": self.errors,
            }
            self._reset_counts()
            return counts

    def __call__(self, request: ChatRequest) -> Reply | str:
        prefix = SUB_PREFIX.format(word=self.word)
        assistant_turns = sum(1 for m in request.messages if m.get("role") == "assistant")
        text = request.last_user_text
        if assistant_turns == 0 and text.startswith(prefix):
            with self._lock:
                self.sub_calls += 1
            return str(text.count(self.word, len(prefix)))
        with self._lock:
            self.root_calls += 1
        if assistant_turns == 0:
            return self._first_root(request)
        if assistant_turns == 1:
            return self._final_root(request)
        return self._give_up(f"root call with {assistant_turns} assistant turns", request)

    # -- per-runtime replies ---------------------------------------------------------

    def _first_root(self, request: ChatRequest) -> Reply | str:
        if self.runtime in ("rlmrt", "rlms"):
            code = SPLIT_CODE.format(k=self.k, prefix=SUB_PREFIX.format(word=self.word))
            return f"Split into {self.k} chunks and count in each.\n```repl\n{code}\n```"
        # rlm-runtime: its REPL cannot call sub-models and its only input is the prompt,
        # so the model itself sends the K chunks as the arguments of rlm_batch_complete.
        prompt = request.last_user_text
        context = prompt[prompt.index("\n\n") + 2 :]
        cuts = split_points(context, self.k)
        prefix = SUB_PREFIX.format(word=self.word)
        queries = [{"query": prefix + context[a:b]} for a, b in itertools.pairwise(cuts)]
        args = json.dumps({"queries": queries, "max_parallel": self.k})
        return ToolCallReply(tool_calls=(("rlm_batch_complete", args),))

    def _final_root(self, request: ChatRequest) -> Reply | str:
        if self.runtime == "rlms":
            return FINISH_RLMS
        if self.runtime == "rlmrt":
            return "The total is printed above.\n```repl\nFINAL(total)\n```"
        # rlm-runtime: read the batch results from the tool message and add them up.
        tool_text = "".join(
            str(m.get("content") or "") for m in request.messages if m.get("role") == "tool"
        )
        answers = re.findall(r"'response': '(-?\d+)'", tool_text)
        if len(answers) != self.k:
            return self._give_up(
                f"{len(answers)} of {self.k} sub-answers in the tool result", request
            )
        return str(sum(int(a) for a in answers))

    def _give_up(self, why: str, request: ChatRequest) -> Reply | str:
        snippet = request.last_user_text[:600] or str(request.messages[-1])[:600]
        with self._lock:
            self.errors.append(f"{why}: {snippet}")
        if self.runtime == "rlms":
            return '```repl\nanswer["content"] = "BENCH-ERROR"\nanswer["ready"] = True\n```'
        if self.runtime == "rlmrt":
            return "FINAL(BENCH-ERROR)"
        return "BENCH-ERROR"


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main() -> None:
    model = CountingModel()
    server = BenchServer(model, models=("bench-model",))
    server.start()
    try:
        _reply({"url": server.url})
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            if command["cmd"] == "configure":
                model.configure(command["runtime"], int(command["k"]), command["word"])
                server.latency_s = float(command.get("latency_ms", 0)) / 1000
                server.reset_stats()
                _reply({"ok": True})
            elif command["cmd"] == "stats":
                requests = server.requests
                stats = {
                    "max_in_flight": server.max_in_flight,
                    "requests": len(requests),
                    "bytes_in": sum(int(r.headers.get("content-length", 0)) for r in requests),
                    **model.take_counts(),
                }
                del requests
                server.reset_stats()
                _reply(stats)
            else:
                _reply({"error": f"unknown command {command['cmd']!r}"})
    finally:
        server.stop()


if __name__ == "__main__":
    main()
