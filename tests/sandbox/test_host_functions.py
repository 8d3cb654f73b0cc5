"""The one table of host functions (`kernel.HOST_FUNCTIONS`) is what every kind offers.

Every sandbox kind gives code exactly the table's helpers, refuses a bad argument with
the table's own error, and hands a good call to the bridge method of the same name with
the table's arguments; `HostBridge` and `RunBridge` implement exactly the table.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from remote_helpers import kind_options, kind_params

from rlmrt.engine.bridge import RunBridge
from rlmrt.errors import MissingDependencyError
from rlmrt.sandbox import SANDBOXES, Limits, SandboxBackend, create_backend
from rlmrt.sandbox.base import HostBridge, QueryFailed
from rlmrt.sandbox.kernel import HELPER_NAMES, HOST_FUNCTIONS

LIMITS = Limits(exec_timeout_s=20, memory_mb=512, output_bytes=100_000)

# one good call per host function: adding an entry to the table needs one here
GOOD_CALLS = {
    "llm_query": "llm_query('hi', model='m', images=[b'\\x89PNG\\r\\n'])",
    "llm_query_batched": "llm_query_batched(('a', 'fail'))",
    "rlm_query": "rlm_query('deep', {'k': [1, None]})",
    "rlm_query_batched": "rlm_query_batched(['q1', 'q2'], ('c1', 'c2'))",
    "context_search": "context_search('needle', 5)",
    "tool_call": "tool_call('echo', [1], {'k': 'v'})",
    "tool_batch": "tool_batch([('echo', {'x': 1}), ('fail', {})])",
    "memory_remember": "memory_remember('note', ['t'], True)",
    "memory_recall": "memory_recall('note', k=2)",
    "memory_forget": "memory_forget('mem-1')",
}
# what code writes for the functions it reaches through the `tools` namespace
IN_CODE = {
    "tool_call": "tools.echo(1, k='v')",
    "tool_batch": "tools.batch([('echo', {'x': 1}), ('fail', {})])",
    "memory_remember": "memory.remember('note', ['t'], True)",
    "memory_recall": "memory.recall('note', k=2)",
    "memory_forget": "memory.forget('mem-1')",
}
# how code checks a namespace is there
NAMESPACE_CHECKS = {"tools": "callable(tools.any_name)", "memory": "callable(memory.recall)"}
BAD_CALLS = [
    "llm_query(1)",
    "llm_query()",
    "llm_query('p', model=2)",
    "llm_query('p', 'm', 'extra')",
    "llm_query('p', images=[1])",
    "llm_query('p', audio=[b'GIF89a'])",
    "llm_query('p', audio=[{'format': 'wav', 'data': 3}])",
    "llm_query_batched('one prompt')",
    "llm_query_batched(['a', 2])",
    "rlm_query(None)",
    "rlm_query('p', context=1, depth=2)",
    "rlm_query_batched(['a'], 'c')",
    "rlm_query_batched(['a', 'b'], ['c'])",
    "context_search(1)",
    "context_search('q', max_tokens=0)",
    "context_search('q', max_tokens='5')",
    "context_search('q', True)",
    "tools.batch('echo')",
    "tools.batch([('echo', 1)])",
    "memory.remember(1)",
    "memory.remember('t', tags='one')",
    "memory.remember('t', pin=1)",
    "memory.recall('q', k=0)",
    "memory.forget(3)",
]


def on_host(call: str) -> Any:
    """`call` evaluated on the host against the table: what code must see."""
    namespace: dict[str, Any] = {
        name: function.arguments for name, function in HOST_FUNCTIONS.items()
    }
    namespace["tools"] = SimpleNamespace(batch=HOST_FUNCTIONS["tool_batch"].arguments)
    namespace["memory"] = SimpleNamespace(
        remember=HOST_FUNCTIONS["memory_remember"].arguments,
        recall=HOST_FUNCTIONS["memory_recall"].arguments,
        forget=HOST_FUNCTIONS["memory_forget"].arguments,
    )
    try:
        return eval(call, namespace)
    except Exception as exc:
        return repr(exc)


class RecordingBridge:
    """A bridge that records what reaches it and answers from the arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def llm_query(
        self,
        prompt: str,
        model: str | None = None,
        images: Sequence[dict[str, str]] | None = None,
        audio: Sequence[dict[str, str]] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> str:
        media = {"images": images} if images is not None else {}
        media.update({"audio": audio} if audio is not None else {})
        media.update({"output_type": output_type} if output_type is not None else {})
        self.calls.append(("llm_query", {"prompt": prompt, "model": model, **media}))
        return f"llm:{prompt}"

    async def llm_query_batched(
        self,
        prompts: Sequence[str],
        model: str | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[str | QueryFailed]:
        self.calls.append(("llm_query_batched", {"prompts": prompts, "model": model}))
        return [QueryFailed("ModelError: down") if p == "fail" else f"llm:{p}" for p in prompts]

    async def rlm_query(
        self, prompt: str, context: Any = None, *, output_type: dict[str, Any] | None = None
    ) -> str:
        self.calls.append(("rlm_query", {"prompt": prompt, "context": context}))
        return f"rlm:{prompt}"

    async def rlm_query_batched(
        self,
        prompts: Sequence[str],
        contexts: Sequence[Any] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[str | QueryFailed]:
        self.calls.append(("rlm_query_batched", {"prompts": prompts, "contexts": contexts}))
        return [f"rlm:{p}" for p in prompts]

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        self.calls.append(("context_search", {"query": query, "max_tokens": max_tokens}))
        return [{"text": query, "tokens": max_tokens}]

    async def tool_call(
        self, tool: str, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Any:
        self.calls.append(("tool_call", {"tool": tool, "args": args, "kwargs": kwargs}))
        return {"tool": tool, "args": list(args or ()), "kwargs": kwargs}

    async def tool_batch(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        self.calls.append(("tool_batch", {"calls": calls}))
        return [QueryFailed("ToolError: no") if n == "fail" else f"{n}:{a}" for n, a in calls]

    async def memory_remember(
        self, text: str, tags: Sequence[str] | None = None, pin: bool = False
    ) -> str:
        self.calls.append(("memory_remember", {"text": text, "tags": tags, "pin": pin}))
        return "mem-1"

    async def memory_recall(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        self.calls.append(("memory_recall", {"query": query, "k": k}))
        return [{"id": "mem-1", "text": query}]

    async def memory_forget(self, item_id: str) -> bool:
        self.calls.append(("memory_forget", {"item_id": item_id}))
        return True


@pytest.fixture(params=kind_params(SANDBOXES.names()))
async def started(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SandboxBackend, Any]]:
    """A started backend of each kind, with a `RecordingBridge`."""
    bridge = RecordingBridge()
    try:
        backend = create_backend(
            request.param,
            limits=LIMITS,
            bridge=bridge,
            options=kind_options(request, request.param),
        )
        await backend.start()
    except MissingDependencyError as exc:
        pytest.skip(f"the {request.param} sandbox cannot start here: {exc}")
    try:
        yield backend, bridge
    finally:
        await backend.aclose()


def printed(call: str) -> str:
    """Code that prints what `call` returned, or the repr of what it raised."""
    return (
        f"try:\n    r = {call}\nexcept Exception as exc:\n    print(repr(exc))\nelse:\n"
        "    if isinstance(r, list):\n"
        "        r = [x if not isinstance(x, Exception) else 'failed: ' + str(x) for x in r]\n"
        "    print(r)"
    )


def test_the_helpers_are_the_table_and_the_answer_helpers() -> None:
    own = [name for name, function in HOST_FUNCTIONS.items() if function.helper]
    assert (*own, "tools", "memory", "FINAL", "FINAL_VAR", "SHOW_VARS") == HELPER_NAMES
    assert set(HOST_FUNCTIONS) - set(own) == set(IN_CODE)
    assert set(GOOD_CALLS) == set(HOST_FUNCTIONS)
    for name, function in HOST_FUNCTIONS.items():
        assert function.name == name and function.arguments.__doc__


@pytest.mark.parametrize("bridge", [HostBridge, RunBridge, RecordingBridge])
def test_a_bridge_implements_exactly_the_table(bridge: type) -> None:
    methods = {
        name: member
        for name, member in vars(bridge).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }
    assert set(methods) == set(HOST_FUNCTIONS)
    for name, function in HOST_FUNCTIONS.items():
        expected = [
            (p.name, p.kind, p.default)
            for p in inspect.signature(function.arguments).parameters.values()
        ]
        got = [
            (p.name, p.kind, p.default)
            for p in list(inspect.signature(methods[name]).parameters.values())[1:]
        ]
        assert got == expected, name


async def test_every_kind_offers_the_table_and_its_errors(
    started: tuple[SandboxBackend, RecordingBridge],
) -> None:
    backend, bridge = started
    shown = ", ".join(NAMESPACE_CHECKS.get(name, f"callable({name})") for name in HELPER_NAMES)
    result = await backend.execute(f"print({shown})")
    assert result.stdout == " ".join(["True"] * len(HELPER_NAMES)) + "\n", result.error
    assert await backend.list_variables() == {}  # helpers are not the user's variables
    for call in BAD_CALLS:
        expected = on_host(call)
        assert isinstance(expected, str) and "Error(" in expected, call
        result = await backend.execute(printed(call))
        assert result.stdout == expected + "\n", (call, result.error)
    assert bridge.calls == []  # a bad call never reaches the host


async def test_every_kind_hands_the_table_arguments_to_the_bridge(
    started: tuple[SandboxBackend, RecordingBridge],
) -> None:
    backend, bridge = started
    outputs = []
    for name, call in GOOD_CALLS.items():
        result = await backend.execute(printed(IN_CODE.get(name, call)))
        assert result.error is None, result.error
        outputs.append(result.stdout)
    assert bridge.calls == [(name, on_host(call)) for name, call in GOOD_CALLS.items()]
    assert outputs == [
        "llm:hi\n",
        "['llm:a', 'failed: ModelError: down']\n",
        "rlm:deep\n",
        "['rlm:q1', 'rlm:q2']\n",
        "[{'text': 'needle', 'tokens': 5}]\n",
        "{'tool': 'echo', 'args': [1], 'kwargs': {'k': 'v'}}\n",
        "[\"echo:{'x': 1}\", 'failed: ToolError: no']\n",
        "mem-1\n",
        "[{'id': 'mem-1', 'text': 'note'}]\n",
        "True\n",
    ]


async def test_every_kind_sends_an_output_type_as_its_schema_and_bytes_as_bytes(
    started: tuple[SandboxBackend, RecordingBridge],
) -> None:
    backend, bridge = started
    code = (
        "llm_query('t', output_type=list[int])\n"
        "rlm_query('m', context=b'\\x00\\xff raw')\n"
        "rlm_query('n', context={'k': [b'\\x01']})"
    )
    result = await backend.execute(code)
    assert result.error is None, result.error
    assert bridge.calls == [
        (
            "llm_query",
            {
                "prompt": "t",
                "model": None,
                "output_type": {"type": "array", "items": {"type": "integer"}},
            },
        ),
        ("rlm_query", {"prompt": "m", "context": b"\x00\xff raw"}),
        ("rlm_query", {"prompt": "n", "context": {"k": [b"\x01"]}}),
    ]


async def test_without_a_bridge_every_host_function_says_so(
    started: tuple[SandboxBackend, RecordingBridge],
) -> None:
    backend, _ = started
    backend.bridge = None
    for name, call in GOOD_CALLS.items():
        result = await backend.execute(printed(IN_CODE.get(name, call)))
        assert result.stdout == (
            f"RuntimeError('{name} is only available inside an RLM run"
            " (this sandbox has no host bridge)')\n"
        ), result.error
