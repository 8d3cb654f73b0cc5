"""The stdlib kernel, run for real as a plain subprocess and driven over KernelChannel."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rlmrt.errors import BudgetExceededError, SandboxError
from rlmrt.sandbox import kernel as kernel_module
from rlmrt.sandbox._channel import KernelChannel, encode_frame
from rlmrt.sandbox.base import QueryFailed
from rlmrt.sandbox.kernel import render_value

KERNEL = Path(kernel_module.__file__)


class FakeBridge:
    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_with = fail_with

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    async def llm_query(self, prompt: str, model: str | None = None) -> str:
        self._record("llm_query", prompt, model)
        return f"llm:{prompt}:{model}"

    async def llm_query_batched(
        self, prompts: Sequence[str], model: str | None = None
    ) -> list[str | QueryFailed]:
        self._record("llm_query_batched", list(prompts), model)
        await asyncio.sleep(0)
        return [QueryFailed("ModelError: down") if p == "fail" else f"llm:{p}" for p in prompts]

    async def rlm_query(self, prompt: str, context: Any = None) -> str:
        self._record("rlm_query", prompt, context)
        return f"rlm:{prompt}:{context!r}"

    async def rlm_query_batched(
        self, prompts: Sequence[str], contexts: Sequence[Any] | None = None
    ) -> list[str | QueryFailed]:
        self._record("rlm_query_batched", list(prompts), contexts)
        return [f"rlm:{p}" for p in prompts]


class Kernel:
    def __init__(self, proc: asyncio.subprocess.Process, channel: KernelChannel) -> None:
        self.proc = proc
        self.channel = channel

    async def execute(self, code: str) -> dict[str, Any]:
        reply = await self.channel.request({"op": "execute", "code": code}, timeout=20)
        assert reply["op"] == "done"
        return reply

    async def op(self, op: str, **fields: Any) -> dict[str, Any]:
        return await self.channel.request({"op": op, **fields}, timeout=20)


async def start_kernel(
    bridge: Any = None, config: dict[str, Any] | None = None
) -> tuple[Kernel, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        str(KERNEL),
        json.dumps(config or {"timeout_s": 5, "output_bytes": 20_000}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    channel = KernelChannel(proc.stdout, proc.stdin, bridge)
    ready = await channel.receive(timeout=10)
    return Kernel(proc, channel), ready


async def stop_kernel(kernel: Kernel) -> None:
    await kernel.channel.aclose()
    try:
        await asyncio.wait_for(kernel.proc.wait(), 5)
    except asyncio.TimeoutError:
        kernel.proc.kill()
        await kernel.proc.wait()


@pytest.fixture
async def k() -> AsyncIterator[Kernel]:
    kernel, _ = await start_kernel()
    yield kernel
    await stop_kernel(kernel)


async def test_ready_names_the_kernel_pid() -> None:
    kernel, ready = await start_kernel()
    try:
        assert ready == {"op": "ready", "pid": kernel.proc.pid}
    finally:
        await stop_kernel(kernel)
    assert kernel.proc.returncode == 0  # shutdown is a clean exit


async def test_print_persistence_and_display(k: Kernel) -> None:
    result = await k.execute("x = 40\ndef add(a):\n    return a + x\nprint('hi', 1)")
    assert result["stdout"] == "hi 1\n" and result["error"] is None
    result = await k.execute("print('a')\nadd(2)")
    assert result["stdout"] == "a\n42\n" and result["display"] == "42"
    assert result["duration_s"] > 0
    for code in ("None", "y = 3", "print('x')"):
        assert (await k.execute(code))["display"] is None


async def test_errors_show_only_user_frames(k: Kernel) -> None:
    result = await k.execute("print('before')\ndef f():\n    return 1 / 0\nf()")
    assert result["stdout"] == "before\n"
    error = result["error"]
    assert error.startswith("Traceback (most recent call last):")
    assert "line 3, in f" in error and "return 1 / 0" in error
    assert error.endswith("ZeroDivisionError: division by zero")
    assert "kernel.py" not in error
    result = await k.execute("x = 1\ny = (\n")
    assert "SyntaxError" in result["error"] and "line 2" in result["error"]
    result = await k.execute("def f(n):\n    return f(n + 1)\nf(0)")
    assert "RecursionError" in result["error"] and "more frames" in result["error"]


async def test_stderr_and_c_level_output_are_captured_in_order(k: Kernel) -> None:
    code = (
        "import os, sys, subprocess\n"
        "print('one', flush=True)\n"
        "os.write(1, b'two\\n')\n"
        "subprocess.run([sys.executable, '-c', 'print(\"three\")'])\n"
        "print('err', file=sys.stderr)\n"
        "n = os.write(2, b'cerr\\n')"
    )
    result = await k.execute(code)
    assert result["error"] is None, result["error"]
    assert result["stdout"] == "one\ntwo\nthree\n"
    assert result["stderr"] == "err\ncerr\n"
    assert (await k.execute("print('next')"))["stdout"] == "next\n"  # capture was reset


async def test_garbage_on_fd_1_does_not_break_the_channel(k: Kernel) -> None:
    code = (
        "import os\n"
        "os.write(1, b'\\x00\\x00\\x00\\x05{{{{{' + bytes(range(256)))\n"
        "os.write(2, b'\\xff\\xfe')"
    )
    result = await k.execute(code)
    assert result["error"] is None
    assert result["stdout"].startswith("\x00\x00\x00\x05{{{{{")
    assert (await k.execute("print(2 + 2)"))["stdout"] == "4\n"


async def test_user_code_cannot_break_the_kernels_json(k: Kernel) -> None:
    """The kernel's codec is private: sabotaging the shared json module changes
    nothing for the channel, and the variables survive."""
    await k.execute("keep = {'a': [1, 2]}")
    sabotage = (
        "import json\n"
        "json.dumps = json.loads = None\n"
        "json.JSONEncoder.item_separator = '!!'\n"
        "json.JSONEncoder.encode = None\n"
        "json.decoder.JSONDecoder.decode = None"
    )
    assert (await k.execute(sabotage))["error"] is None
    result = await k.execute("FINAL(keep)")
    assert result["final"] == '{"a": [1, 2]}'
    assert (await k.execute("print(sorted(keep))"))["stdout"] == "['a']\n"


async def test_output_is_truncated_with_marker() -> None:
    kernel, _ = await start_kernel(config={"output_bytes": 100})
    try:
        result = await kernel.execute("for i in range(1000):\n    print('0123456789')")
        assert result["stdout"].startswith("0123456789\n" * 9)
        assert result["stdout"].endswith("\n... [output truncated: 10900 more bytes]")
        result = await kernel.execute("import os\nn = os.write(1, b'z' * 5000)")
        assert result["stdout"].endswith("\n... [output truncated: 4900 more bytes]")
        result = await kernel.execute("x = 'y' * 500\nx")
        assert result["display"].endswith(" ... [truncated]")
        result = await kernel.execute("raise ValueError('e' * 500)")
        # the REPL's one shortening: the start of the last line (type and message) stays
        assert result["error"].startswith("[error truncated] ...\n")
        assert "ValueError: eeee" in result["error"]
        assert result["error"].endswith("e ... [truncated]")
    finally:
        await stop_kernel(kernel)


async def test_final_final_var_show_vars(k: Kernel) -> None:
    assert (await k.execute("SHOW_VARS()"))["stdout"] == "No variables defined yet.\n"
    result = await k.execute("FINAL({'a': [1, 'é']})")
    assert result["final_set"] and result["final"] == '{"a": [1, "é"]}'
    result = await k.execute("answer = [1, 2]\nFINAL_VAR('answer')")
    assert result["final"] == "[1, 2]"
    result = await k.execute("FINAL_VAR('beta')")
    assert not result["final_set"]
    assert "NameError" in result["error"] and "answer" in result["error"]
    result = await k.execute("FINAL_VAR(3)")
    assert "name of a variable" in result["error"]
    result = await k.execute("SHOW_VARS()")
    assert result["stdout"] == "Variables:\n  answer: list\n"
    result = await k.execute("FINAL = 3\nFINAL")
    assert result["display"] == "3"
    assert (await k.execute("FINAL('back')"))["final"] == "back"  # helpers return each time


async def test_set_get_list(k: Kernel) -> None:
    assert (await k.op("set", name="limit", value=[1, {"a": None}]))["op"] == "value"
    await k.execute("out = len(limit)\nimport re")
    reply = await k.op("get", name="out")
    assert reply["op"] == "value" and reply["value"] == 2
    assert (await k.op("list"))["value"] == {"limit": "list", "out": "int"}
    reply = await k.op("get", name="nope")
    assert reply["op"] == "error" and "no variable named 'nope'" in reply["error"]
    await k.execute("s = {1, 2}")
    reply = await k.op("get", name="s")
    assert reply["op"] == "error" and "set" in reply["error"]
    reply = await k.op("set", name="_x", value=1)
    assert reply["op"] == "error" and "reserved" in reply["error"]
    reply = await k.op("nonsense")
    assert reply["op"] == "error" and "unknown op" in reply["error"]


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("context.txt", "héllo\nworld".encode(), "héllo\nworld"),
        ("context.json", b'{"doc": [1, 2]}', {"doc": [1, 2]}),
        ("context.bin", b"\xff\x00", b"\xff\x00"),
    ],
)
async def test_load_context_from_a_file(
    k: Kernel, tmp_path: Path, filename: str, data: bytes, expected: Any
) -> None:
    path = tmp_path / filename
    path.write_bytes(data)
    reply = await k.op("load_context", name="context", path=str(path))
    assert reply["op"] == "value"
    result = await k.execute("context")
    assert result["display"] == repr(expected)


async def test_bridge_calls_and_batched_failures() -> None:
    bridge = FakeBridge()
    kernel, _ = await start_kernel(bridge)
    try:
        code = (
            "a = llm_query('hi', model='m')\n"
            "rs = llm_query_batched(['ok', 'fail'])\n"
            "b = rlm_query('deep', context={'k': 1})\n"
            "c = rlm_query_batched(['x', 'y'], ['cx', 'cy'])\n"
            "a, [isinstance(r, Exception) for r in rs], type(rs[1]).__name__, str(rs[1]), b, c"
        )
        result = await kernel.execute(code)
        assert result["error"] is None, result["error"]
        assert result["display"] == (
            "('llm:hi:m', [False, True], 'QueryFailed', 'ModelError: down',"
            " \"rlm:deep:{'k': 1}\", ['rlm:x', 'rlm:y'])"
        )
        assert bridge.calls == [
            ("llm_query", "hi", "m"),
            ("llm_query_batched", ["ok", "fail"], None),
            ("rlm_query", "deep", {"k": 1}),
            ("rlm_query_batched", ["x", "y"], ["cx", "cy"]),
        ]
        result = await kernel.execute("llm_query(3)")
        assert "prompt must be a str" in result["error"]
    finally:
        await stop_kernel(kernel)


async def test_bridge_exception_is_raised_in_user_code_with_its_name() -> None:
    bridge = FakeBridge(fail_with=BudgetExceededError("max_calls", "budget max_calls reached"))
    kernel, _ = await start_kernel(bridge)
    try:
        code = (
            "try:\n"
            "    llm_query('x')\n"
            "except Exception as exc:\n"
            "    print('caught:', exc)\n"
            "rlm_query('y')"
        )
        result = await kernel.execute(code)
        assert result["stdout"] == "caught: budget max_calls reached\n"
        assert result["error"].endswith("BudgetExceededError: budget max_calls reached")
        assert "rlm_query('y')" in result["error"]
    finally:
        await stop_kernel(kernel)


async def test_no_bridge_gives_clear_error(k: Kernel) -> None:
    result = await k.execute("llm_query_batched(['x'])")
    assert "RuntimeError" in result["error"]
    assert "only available inside an RLM run" in result["error"]


async def test_timeout_interrupts_the_code_and_keeps_variables() -> None:
    kernel, _ = await start_kernel(config={"timeout_s": 0.3})
    try:
        await kernel.execute("kept = 7")
        result = await kernel.execute("while True:\n    pass")
        assert result["error"].endswith(
            "TimeoutError: execution exceeded the 0.3 s time limit (timeout_s)"
        )
        result = await kernel.execute("try:\n    while True: pass\nexcept Exception:\n    pass")
        assert "TimeoutError" in result["error"]  # `except Exception` does not swallow it
        assert (await kernel.execute("kept"))["display"] == "7"
    finally:
        await stop_kernel(kernel)


async def test_slow_bridge_call_is_interrupted_and_its_late_answer_ignored() -> None:
    class SlowBridge(FakeBridge):
        async def llm_query(self, prompt: str, model: str | None = None) -> str:
            await asyncio.sleep(0.6 if prompt == "slow" else 0)
            return prompt

    kernel, _ = await start_kernel(SlowBridge(), config={"timeout_s": 0.3})
    try:
        result = await kernel.execute("llm_query('slow')")
        assert "TimeoutError" in result["error"]
        await asyncio.sleep(0.5)
        assert (await kernel.execute("llm_query('fast')"))["display"] == "'fast'"
    finally:
        await stop_kernel(kernel)


async def test_kernel_exiting_mid_execute_is_a_sandbox_error(k: Kernel) -> None:
    with pytest.raises(SandboxError, match="closed the channel"):
        await k.execute("import os\nos._exit(3)")
    assert await k.proc.wait() == 3
    with pytest.raises(SandboxError, match="unusable"):
        await k.execute("print(1)")


async def test_garbage_and_oversized_frames_are_sandbox_errors() -> None:
    for payload, match in (
        (b"\x00\x00\x00\x03abc", "garbage"),
        (b"\x7f\x00\x00\x00", "over the"),
        (b"\x00\x00\x00\x02[]", "garbage"),
    ):
        reader = asyncio.StreamReader()
        reader.feed_data(payload)
        channel = KernelChannel(reader, None, None)  # type: ignore[arg-type]
        with pytest.raises(SandboxError, match=match):
            await channel.receive(timeout=1)


async def test_request_timeout_is_a_sandbox_error() -> None:
    kernel, _ = await start_kernel(config={})  # no time limit in the kernel
    try:
        with pytest.raises(SandboxError, match="did not answer in time"):
            await kernel.channel.request({"op": "execute", "code": "while True: pass"}, timeout=0.3)
    finally:
        kernel.proc.kill()
        await kernel.proc.wait()


def test_frames_are_length_prefixed_json() -> None:
    assert encode_frame({"op": "x"}) == b'\x00\x00\x00\x0b{"op": "x"}'
    assert render_value is kernel_module.render_value  # one rendering for every backend
