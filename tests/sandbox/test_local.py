"""Behaviour of the local (in-process, RestrictedPython) sandbox."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from rlmrt.errors import BudgetExceededError, SandboxClosedError, UsageError
from rlmrt.sandbox import ExecResult, Limits, Sandbox, create_backend
from rlmrt.sandbox.base import QueryFailed
from rlmrt.sandbox.kernel import render_value
from rlmrt.sandbox.local import LocalSandbox


class FakeBridge:
    """Records calls, the loop and the thread they ran on; answers predictably."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.threads: list[int] = []
        self.fail_with = fail_with

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        self.loops.append(asyncio.get_running_loop())
        self.threads.append(threading.get_ident())
        if self.fail_with is not None:
            raise self.fail_with

    async def llm_query(self, prompt: str, model: str | None = None) -> str:
        self._record("llm_query", prompt, model)
        await asyncio.sleep(0)
        return f"llm:{prompt}:{model}"

    async def llm_query_batched(
        self, prompts: Sequence[str], model: str | None = None
    ) -> list[str | QueryFailed]:
        self._record("llm_query_batched", list(prompts), model)
        return [QueryFailed("ModelError: down") if p == "fail" else f"llm:{p}" for p in prompts]

    async def rlm_query(self, prompt: str, context: Any = None) -> str:
        self._record("rlm_query", prompt, context)
        return f"rlm:{prompt}:{context!r}"

    async def rlm_query_batched(
        self, prompts: Sequence[str], contexts: Sequence[Any] | None = None
    ) -> list[str | QueryFailed]:
        self._record("rlm_query_batched", list(prompts), contexts)
        return [f"rlm:{p}" for p in prompts]


LIMITS = Limits(exec_timeout_s=5, memory_mb=512, output_bytes=20_000)


@pytest.fixture
async def sb() -> AsyncIterator[LocalSandbox]:
    sandbox = LocalSandbox(limits=LIMITS)
    await sandbox.start()
    yield sandbox
    await sandbox.aclose()


async def run(sandbox: LocalSandbox, code: str) -> ExecResult:
    return await sandbox.execute(code)


# -- basics -------------------------------------------------------------------------------


async def test_print_is_captured(sb: LocalSandbox) -> None:
    result = await run(sb, "print('hello', 42)\nprint('a', 'b', sep='-', end='!')")
    assert result.ok
    assert result.stdout == "hello 42\na-b!"
    assert result.stderr == ""
    assert result.duration_s > 0


async def test_variables_persist_between_executes(sb: LocalSandbox) -> None:
    assert (await run(sb, "x = 40\ndef add(a):\n    return a + x")).ok
    result = await run(sb, "print(add(2))")
    assert result.stdout == "42\n"


async def test_error_has_short_user_traceback(sb: LocalSandbox) -> None:
    result = await run(sb, "a = 1\ndef f():\n    return a / 0\nf()")
    assert result.error is not None
    assert result.error.endswith("ZeroDivisionError: division by zero")
    assert "return a / 0" in result.error
    assert "line 3, in f" in result.error
    assert "rlmrt" not in result.error  # no host frames
    assert result.stderr == result.error
    assert not result.ok


async def test_output_before_an_error_is_kept(sb: LocalSandbox) -> None:
    result = await run(sb, "print('before')\nraise ValueError('boom')")
    assert result.stdout == "before\n"
    assert result.error is not None and result.error.endswith("ValueError: boom")


async def test_long_recursion_traceback_is_elided(sb: LocalSandbox) -> None:
    result = await run(sb, "def f(n):\n    return f(n + 1)\nf(0)")
    assert result.error is not None
    assert "RecursionError" in result.error
    assert "more frames" in result.error
    assert len(result.error) < 3000


async def test_syntax_error_names_the_line(sb: LocalSandbox) -> None:
    result = await run(sb, "x = 1\ny = (\n")
    assert result.error is not None
    assert "SyntaxError" in result.error
    assert "line 2" in result.error


async def test_restricted_syntax_is_reported_as_syntax_error(sb: LocalSandbox) -> None:
    result = await run(sb, "x = 1\n_hidden = 2")
    assert result.error is not None
    assert result.error.startswith("SyntaxError")
    assert "Line 2" in result.error and "_hidden" in result.error


async def test_display_of_last_expression(sb: LocalSandbox) -> None:
    result = await run(sb, "x = 5\nx")
    assert result.stdout == "5\n"
    assert result.display == "5"
    result = await run(sb, "print('a')\n'text'")
    assert result.stdout == "a\n'text'\n"
    assert result.display == "'text'"


async def test_no_display_for_none_or_statements(sb: LocalSandbox) -> None:
    for code in ("print('x')", "None", "y = 3", "def f():\n    pass\nf()"):
        result = await run(sb, code)
        assert result.display is None, code
    assert (await run(sb, "print('x')")).stdout == "x\n"


async def test_output_is_truncated_with_marker() -> None:
    sandbox = LocalSandbox(limits=Limits(exec_timeout_s=5, output_bytes=100))
    try:
        result = await sandbox.execute("for i in range(1000):\n    print('0123456789')")
        assert result.stdout.startswith("0123456789\n" * 9)
        assert "\n... [output truncated: 10900 more bytes]" in result.stdout
        result = await sandbox.execute("print('é' * 80)")  # cut inside a 2-byte character
        assert "[output truncated:" in result.stdout
        result = await sandbox.execute("x = 'y' * 500\nx")
        assert result.display is not None and result.display.endswith("[truncated]")
        result = await sandbox.execute("raise ValueError('e' * 500)")
        assert result.error is not None
        assert result.error.startswith("[error truncated] ...\n")
        assert "ValueError: eeee" in result.error and result.error.endswith("e ... [truncated]")
        deep = "def f(n):\n    return f(n - 1) if n else 1 / 0\nf(30)"
        result = await sandbox.execute(deep)
        assert result.error is not None and len(result.error) < 200
        assert result.error.endswith("ZeroDivisionError: division by zero")
    finally:
        await sandbox.aclose()


# -- FINAL / FINAL_VAR / SHOW_VARS -----------------------------------------------------------


async def test_final_sets_answer(sb: LocalSandbox) -> None:
    result = await run(sb, "FINAL('the answer')")
    assert result.final_set and result.final_answer == "the answer"
    result = await run(sb, "FINAL({'a': [1, 'é']})")
    assert result.final_answer == '{"a": [1, "é"]}'
    result = await run(sb, "x = 1")
    assert not result.final_set and result.final_answer is None


async def test_final_var(sb: LocalSandbox) -> None:
    result = await run(sb, "answer = [1, 2]\nFINAL_VAR('answer')")
    assert result.final_set and result.final_answer == "[1, 2]"


async def test_final_var_unknown_name_lists_variables(sb: LocalSandbox) -> None:
    result = await run(sb, "alpha = 1\nFINAL_VAR('beta')")
    assert not result.final_set
    assert result.error is not None
    assert "NameError" in result.error and "'beta'" in result.error and "alpha" in result.error


async def test_final_var_needs_a_name(sb: LocalSandbox) -> None:
    result = await run(sb, "FINAL_VAR(42)")
    assert result.error is not None and "TypeError" in result.error
    assert "name of a variable" in result.error
    result = await run(sb, "FINAL_VAR('nothing')")
    assert result.error is not None and "(none)" in result.error


async def test_show_vars(sb: LocalSandbox) -> None:
    assert (await run(sb, "SHOW_VARS()")).stdout == "No variables defined yet.\n"
    await sb.set_variable("context", "some text")
    result = await run(sb, "import json\nn = 3\nSHOW_VARS()")
    assert result.stdout == "Variables:\n  context: str\n  n: int\n"
    assert result.display is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ((1, "a"), '[1, "a"]'),
        ({"k": "ü"}, '{"k": "ü"}'),
        ({(1, 2): 3}, "{(1, 2): 3}"),  # not JSON-serialisable: repr
        ({1, 2}, "{1, 2}"),
        pytest.param(10**5000, f"<int with {(10**5000).bit_length()} bits>", id="huge-int"),
    ],
)
def test_render_value(value: Any, expected: str) -> None:
    assert render_value(value) == expected


def test_render_value_reraises_other_repr_errors() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    with pytest.raises(ValueError, match="no repr"):
        render_value(Broken())


# -- variables in and out ---------------------------------------------------------------


async def test_set_get_list_variables(sb: LocalSandbox) -> None:
    await sb.load_context({"doc": "abc"})
    await sb.set_variable("limit", 3)
    result = await run(sb, "print(context['doc'][:limit])\nout = len(context)\nimport re")
    assert result.stdout == "abc\n"
    assert await sb.get_variable("out") == 1
    assert await sb.list_variables() == {"context": "dict", "limit": "int", "out": "int"}


async def test_list_variables_excludes_helpers_but_not_overrides(sb: LocalSandbox) -> None:
    await run(sb, "FINAL = 3\nL = list")
    assert await sb.list_variables() == {"FINAL": "int", "L": "type"}
    result = await run(sb, "FINAL('ok')")  # helpers come back every execute
    assert result.final_answer == "ok"


@pytest.mark.parametrize("name", ["1x", "_private", "class", "llm_query", "FINAL", 3])
async def test_set_variable_rejects_bad_names(sb: LocalSandbox, name: Any) -> None:
    with pytest.raises(UsageError):
        await sb.set_variable(name, 1)


async def test_set_variable_rejects_modules(sb: LocalSandbox) -> None:
    import os

    with pytest.raises(UsageError, match="modules"):
        await sb.set_variable("osmod", os)


async def test_get_unknown_variable(sb: LocalSandbox) -> None:
    with pytest.raises(UsageError, match="no variable named 'nope'"):
        await sb.get_variable("nope")


async def test_execute_needs_a_string(sb: LocalSandbox) -> None:
    with pytest.raises(UsageError):
        await sb.execute(b"print(1)")  # type: ignore[arg-type]


# -- lifecycle -----------------------------------------------------------------------------


async def test_close_is_idempotent_and_final() -> None:
    sandbox = LocalSandbox()
    assert (await sandbox.execute("x = 1")).ok  # starts lazily
    await sandbox.aclose()
    await sandbox.aclose()
    with pytest.raises(SandboxClosedError):
        await sandbox.execute("x = 1")
    with pytest.raises(SandboxClosedError):
        await sandbox.start()
    with pytest.raises(SandboxClosedError):
        await sandbox.list_variables()


async def test_async_context_manager() -> None:
    async with LocalSandbox() as sandbox:
        assert (await sandbox.execute("print(3)")).stdout == "3\n"
    with pytest.raises(SandboxClosedError):
        await sandbox.execute("x = 1")


async def test_close_before_start() -> None:
    sandbox = LocalSandbox()
    await sandbox.aclose()
    with pytest.raises(SandboxClosedError):
        await sandbox.execute("x = 1")


def test_registry_and_facade() -> None:
    assert isinstance(create_backend("local"), LocalSandbox)
    assert LocalSandbox.kind == "local"
    with Sandbox("local", exec_timeout_s=5, memory_mb=512) as box:
        assert box.execute("print(1+1)").stdout == "2\n"
        box.set_variable("v", [1, 2])
        assert box.execute("v[1]").display == "2"
        assert box.get_variable("v") == [1, 2]
        assert box.list_variables() == {"v": "list"}
    with pytest.raises(SandboxClosedError):
        box.execute("x = 1")


async def test_executes_on_one_sandbox_are_serialised(sb: LocalSandbox) -> None:
    await run(sb, "log = []")
    codes = [f"for i in range(200):\n    log.append({n})" for n in range(3)]
    results = await asyncio.gather(*(sb.execute(c) for c in codes))
    assert all(r.ok for r in results)
    log = await sb.get_variable("log")
    # each execute ran to its end before the next began
    assert log == [0] * 200 + [1] * 200 + [2] * 200


async def test_same_code_twice_uses_the_cache(sb: LocalSandbox) -> None:
    await run(sb, "n = 0")
    for _ in range(3):
        await run(sb, "n += 1")
    assert await sb.get_variable("n") == 3


async def test_compile_cache_is_bounded(sb: LocalSandbox) -> None:
    for i in range(300):
        await run(sb, f"v = {i}")
    assert await sb.get_variable("v") == 299


# -- the bridge ----------------------------------------------------------------------------


async def test_bridge_calls_run_on_host_loop_with_arguments() -> None:
    bridge = FakeBridge()
    sandbox = LocalSandbox(limits=LIMITS, bridge=bridge)
    try:
        code = (
            "a = llm_query('hi')\n"
            "b = llm_query('hi', model='small')\n"
            "c = llm_query_batched(['x', 'y'], model='m')\n"
            "d = rlm_query('sub', context={'k': 1})\n"
            "e = rlm_query_batched(['p', 'q'], contexts=['c1', 'c2'])\n"
            "f = rlm_query_batched(('p',))\n"
            "print(a, b, c, d, e, f)"
        )
        result = await sandbox.execute(code)
        assert result.ok, result.error
        assert result.stdout == (
            "llm:hi:None llm:hi:small ['llm:x', 'llm:y'] rlm:sub:{'k': 1} "
            "['rlm:p', 'rlm:q'] ['rlm:p']\n"
        )
        assert bridge.calls == [
            ("llm_query", "hi", None),
            ("llm_query", "hi", "small"),
            ("llm_query_batched", ["x", "y"], "m"),
            ("rlm_query", "sub", {"k": 1}),
            ("rlm_query_batched", ["p", "q"], ["c1", "c2"]),
            ("rlm_query_batched", ["p"], None),
        ]
        loop = asyncio.get_running_loop()
        assert all(seen is loop for seen in bridge.loops)
        assert set(bridge.threads) == {threading.get_ident()}
    finally:
        await sandbox.aclose()


async def test_failed_batch_items_are_exception_values() -> None:
    sandbox = LocalSandbox(limits=LIMITS, bridge=FakeBridge())
    try:
        code = (
            "rs = llm_query_batched(['ok', 'fail'])\n"
            "[isinstance(r, Exception) for r in rs], str(rs[1])"
        )
        result = await sandbox.execute(code)
        assert result.display == "([False, True], 'ModelError: down')"
    finally:
        await sandbox.aclose()


async def test_bridge_exception_surfaces_in_user_code() -> None:
    bridge = FakeBridge(fail_with=BudgetExceededError("max_calls", "budget max_calls reached"))
    sandbox = LocalSandbox(limits=LIMITS, bridge=bridge)
    try:
        code = (
            "try:\n"
            "    llm_query('x')\n"
            "except Exception as exc:\n"
            "    print('caught:', exc)\n"
            "rlm_query('y')"
        )
        result = await sandbox.execute(code)
        assert result.stdout == "caught: budget max_calls reached\n"
        assert result.error is not None
        assert "BudgetExceededError: budget max_calls reached" in result.error
        assert "rlm_query('y')" in result.error
        assert "asyncio" not in result.error
    finally:
        await sandbox.aclose()


async def test_bridge_timeout_error_is_not_mistaken_for_waiting() -> None:
    sandbox = LocalSandbox(limits=LIMITS, bridge=FakeBridge(fail_with=TimeoutError("slow model")))
    try:
        result = await sandbox.execute("llm_query('x')")
        assert result.error is not None and "TimeoutError: slow model" in result.error
    finally:
        await sandbox.aclose()


async def test_slow_bridge_call_counts_against_the_time_limit() -> None:
    class SlowBridge(FakeBridge):
        async def llm_query(self, prompt: str, model: str | None = None) -> str:
            await asyncio.sleep(30)
            raise AssertionError("not reached")

    sandbox = LocalSandbox(limits=Limits(exec_timeout_s=0.5), bridge=SlowBridge())
    try:
        result = await sandbox.execute("llm_query('x')")
        assert result.error is not None and "TimeoutError" in result.error
        assert (await sandbox.execute("print('alive')")).stdout == "alive\n"
    finally:
        await sandbox.aclose()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("llm_query(3)", "prompt must be a str"),
        ("llm_query('x', model=1)", "model must be a str"),
        ("llm_query_batched('abc')", "prompts must be a list"),
        ("llm_query_batched(['a', 2])", "prompts[1] must be a str"),
        ("rlm_query_batched(['a'], contexts='c')", "contexts must be a list"),
        ("rlm_query_batched(['a'], contexts=[1, 2])", "1 prompts but 2 contexts"),
    ],
)
async def test_bridge_argument_errors(code: str, message: str) -> None:
    sandbox = LocalSandbox(limits=LIMITS, bridge=FakeBridge())
    try:
        result = await sandbox.execute(code)
        assert result.error is not None and message in result.error
    finally:
        await sandbox.aclose()


@pytest.mark.parametrize(
    "call",
    ["llm_query('x')", "llm_query_batched(['x'])", "rlm_query('x')", "rlm_query_batched([])"],
)
async def test_no_bridge_gives_clear_error(sb: LocalSandbox, call: str) -> None:
    result = await run(sb, call)
    assert result.error is not None
    assert "only available inside an RLM run" in result.error


# -- threads and concurrency ------------------------------------------------------------


async def test_code_runs_off_the_event_loop(sb: LocalSandbox) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        # busy for 0.3 s of wall time, however loaded the machine is
        code = "import time\nend = time.monotonic() + 0.3\nwhile time.monotonic() < end:\n    pass"
        result = await run(sb, code)
    finally:
        task.cancel()
    assert result.ok
    assert ticks >= 5  # the loop kept running while the code did


async def test_two_sandboxes_never_mix_output() -> None:
    first = LocalSandbox(limits=Limits(output_bytes=10_000_000))
    second = LocalSandbox(limits=Limits(output_bytes=10_000_000))
    try:
        code = "for i in range(40000):\n    print('{tag}' + str(i))"
        ra, rb = await asyncio.gather(
            first.execute(code.format(tag="A")), second.execute(code.format(tag="B"))
        )
        assert ra.stdout.splitlines() == [f"A{i}" for i in range(40000)]
        assert rb.stdout.splitlines() == [f"B{i}" for i in range(40000)]
    finally:
        await first.aclose()
        await second.aclose()


def test_two_facades_in_threads_never_mix_output() -> None:
    outputs: dict[str, str] = {}

    def work(tag: str) -> None:
        with Sandbox("local") as box:
            outputs[tag] = box.execute(f"for i in range(20000):\n    print('{tag}')").stdout

    threads = [threading.Thread(target=work, args=(t,)) for t in "XY"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outputs["X"] == "X\n" * 20000
    assert outputs["Y"] == "Y\n" * 20000


# -- what the code can do -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("import json\njson.loads('[1, 2]')", "[1, 2]"),
        ("import re\nre.findall(r'\\d+', 'a1b22')", "['1', '22']"),
        ("import collections\ncollections.Counter('abca').most_common(1)", "[('a', 2)]"),
        ("from collections import deque\nlist(deque([1, 2], maxlen=1))", "[2]"),
        ("import collections.abc\nisinstance([], collections.abc.Sequence)", "True"),
        ("import math\nmath.factorial(5), math.comb(5, 2), math.prod([2, 3])", "(120, 10, 6)"),
        ("import statistics\nstatistics.mean([1, 2, 3])", "2"),
        ("import itertools\nlist(itertools.islice(itertools.count(), 3))", "[0, 1, 2]"),
        ("import itertools\nlist(itertools.chain.from_iterable([[1], [2]]))", "[1, 2]"),
        ("import itertools\na, b = itertools.tee([1, 2])\nlist(a) + list(b)", "[1, 2, 1, 2]"),
        ("import itertools\nisinstance(1, itertools.chain)", "False"),
        ("import functools\nfunctools.reduce(lambda a, b: a + b, range(5))", "10"),
        ("import operator\noperator.mul(6, 7), operator.pow(2, 5)", "(42, 32)"),
        ("import operator\noperator.lshift(1, 4), operator.mod(7, 4)", "(16, 3)"),
        ("import operator\nd = {}\noperator.setitem(d, 'k', 1)\nd", "{'k': 1}"),
        ("import operator\nd = {'k': 1}\noperator.delitem(d, 'k')\nd", "{}"),
        (
            "import operator\nclass P:\n    def __init__(self):\n        self.v = 2\n"
            "operator.attrgetter('v')(P()), operator.attrgetter('v', 'v')(P())",
            "(2, (2, 2))",
        ),
        ("import operator\noperator.methodcaller('upper')('ab')", "'AB'"),
        (
            "import random\nrandom.seed(3)\nr = random.random()\n"
            "random.seed(3)\nr == random.random()",
            "True",
        ),
        ("import random\nlen(random.randbytes(4)), random.getrandbits(8) < 256", "(4, True)"),
        ("import random\nrandom.Random(1).randint(1, 1)", "1"),
        ("import string\nstring.ascii_lowercase[:3]", "'abc'"),
        ("import textwrap\ntextwrap.shorten('hello world', 8)", "'[...]'"),
        ("import datetime\ndatetime.date(2024, 1, 2).isoformat()", "'2024-01-02'"),
        ("import decimal\ndecimal.Decimal('1.10') + decimal.Decimal('2.20')", "Decimal('3.30')"),
        (
            "import decimal\nwith decimal.localcontext(prec=5):\n    v = decimal.Decimal(1) / 3\nv",
            "Decimal('0.33333')",
        ),
        ("import fractions\nfractions.Fraction(1, 3) ** 2", "Fraction(1, 9)"),
        ("import hashlib\nhashlib.sha256(b'a').hexdigest()[:8]", "'ca978112'"),
        ("import hashlib\nlen(hashlib.shake_128(b'a').hexdigest(4))", "8"),
        ("import base64\nbase64.b64encode(b'hi')", "b'aGk='"),
        ("import zlib\nzlib.decompress(zlib.compress(b'abc' * 10))", "b'" + "abc" * 10 + "'"),
        ("import csv, io\nlist(csv.reader(io.StringIO('a,b\\n1,2')))", "[['a', 'b'], ['1', '2']]"),
        ("import difflib\ndifflib.get_close_matches('appel', ['apple', 'x'])", "['apple']"),
        ("import heapq\nheapq.nsmallest(2, [5, 1, 3])", "[1, 3]"),
        ("import bisect\nbisect.bisect([1, 2, 4], 3)", "2"),
        ("import html\nhtml.escape('<a>')", "'&lt;a&gt;'"),
        ("import unicodedata\nunicodedata.name('a')", "'LATIN SMALL LETTER A'"),
        ("import uuid\nlen(str(uuid.uuid4()))", "36"),
        ("import copy\na = [[1]]\nb = copy.deepcopy(a)\nb[0].append(2)\na", "[[1]]"),
        ("import typing\ntyping.Optional[int] == typing.Union[int, None]", "True"),
        ("import typing\ntyping.get_origin(typing.List[int]) is list", "True"),
        ("import typing\ntyping.get_origin(typing.Type[int]) is type", "True"),
        ("import typing\ntyping.get_origin(int)", None),
        ("import time\ntime.time() > 0 and time.perf_counter() >= 0", "True"),
        ("import enum\nclass C(enum.Enum):\n    A = 1\nC.A.value", "1"),
        (
            "from dataclasses import dataclass, asdict\n@dataclass\nclass P:\n    x: int\n"
            "    y: int = 2\np = P(1)\np.x = 5\nasdict(p)",
            "{'x': 5, 'y': 2}",
        ),
        ("import json\njson", "<module 'json' (sandboxed)>"),
        ("import json\ndir(json)[:3]", "['JSONDecodeError', 'JSONDecoder', 'JSONEncoder']"),
        ("import pprint\npprint.pprint({'b': 1, 'a': 2})", None),
        ("import copy\nimport json\ncopy.copy(json) is json", "True"),
        # builtins and guards
        ("isinstance([], list), type([]) is list, type(list) is type", "(True, True, True)"),
        ("isinstance(list, type), issubclass(bool, int), type(3) is int", "(True, True, True)"),
        (
            "class L(list):\n    pass\nl = L([1])\nl.tag = 'x'\nisinstance(l, list), l.tag",
            "(True, 'x')",
        ),
        ("list[int]", "list[int]"),
        ("dict.fromkeys('ab', 0)", "{'a': 0, 'b': 0}"),
        ("str.join('-', ['a', 'b']), str.upper('x')", "('a-b', 'X')"),
        ("dict([(1, 2)], a=3), dict({'k': 1}), dict()", "({1: 2, 'a': 3}, {'k': 1}, {})"),
        (
            "bytes(3), bytes('é', 'utf-8'), bytearray([65, 66]), bytes()",
            "(b'\\x00\\x00\\x00', b'\\xc3\\xa9', bytearray(b'AB'), b'')",
        ),
        (
            "tuple('ab'), set([1, 1]), frozenset([2]), list()",
            "(('a', 'b'), {1}, frozenset({2}), [])",
        ),
        ("sorted([3, 1, 2], reverse=True), sum([1, 2], 10)", "([3, 2, 1], 13)"),
        ("min([3, 1]), max(1, 5), any([0, 1]), all([])", "(1, 5, True, True)"),
        ("list(map(str, [1, 2])), list(filter(None, [0, 1]))", "(['1', '2'], [1])"),
        ("list(zip('ab', [1, 2])), list(enumerate('a', 1))", "([('a', 1), ('b', 2)], [(1, 'a')])"),
        ("it = iter([1, 2, 3])\nnext(it), list(iter(lambda: next(it), 3))", "(1, [2])"),
        ("a, (b, c) = 1, (2, 3)\n[*range(3), a, b, c]", "[0, 1, 2, 1, 2, 3]"),
        ("pairs = [(1, 'a'), (2, 'b')]\n[k for k, v in pairs if v != 'b']", "[1]"),
        ("for k, v in {'a': 1}.items():\n    pass\nk, v", "('a', 1)"),
        ("def f(*args, **kw):\n    return args, kw\nf(*[1], **{'a': 2})", "((1,), {'a': 2})"),
        ("x = [1]\nx *= 2\nx", "[1, 1]"),
        ("n = 2\nn **= 3\nn <<= 1\nn %= 5\nn", "1"),
        ("d = {'a': [1]}\nd['a'] += [2]\nd['b'] = 0\nd['b'] -= 1\nd", "{'a': [1, 2], 'b': -1}"),
        ("s = [1, 2, 3]\ns[0:2] += [9]\ns", "[1, 2, 9, 3]"),
        ("'%s-%d' % ('a', 3), '%*d' % (3, 1), b'%s' % b'x'", "('a-3', '  1', b'x')"),
        ('f\'{3.14159:.2f}|{"x"!r:>5}|{1!s:<2}|{"é"!a}\'', "\"3.14|  'x'|1 |'\\\\xe9'\""),
        (
            "format(5, '03d'), '{:>4}{}'.format('a', 'b'), '{0[1]}'.format([1, 2])",
            "('005', '   ab', '2')",
        ),
        (
            "'a b'.split(), 'ab'.ljust(4, '.'), 'a'.center(3), '7'.zfill(3)",
            "(['a', 'b'], 'ab..', ' a ', '007')",
        ),
        (
            "'aXa'.replace('a', 'bb'), 'aXa'.replace('a', 'c', 1), 'a\\tb'.expandtabs(2)",
            "('bbXbb', 'cXa', 'a b')",
        ),
        ("', '.join(str(i) for i in range(3)), b'-'.join([b'a', b'b'])", "('0, 1, 2', b'a-b')"),
        (
            "(255).to_bytes(2, 'big'), 2 ** -1, 3 * 'ab', 2 ** 10",
            "(b'\\x00\\xff', 0.5, 'ababab', 1024)",
        ),
        ("pow(2, 10), pow(2, 10, 1000), 1 << 3, 10 % 3", "(1024, 24, 8, 1)"),
        ("s = {1}\ns.update([2])\ns.union(range(3))", "{0, 1, 2}"),
        ("l = []\nl.extend(x for x in range(3))\nl", "[0, 1, 2]"),
        (
            "hasattr('', 'upper'), hasattr('', '__class__'), getattr(1, 'nope', 'dflt')",
            "(True, False, 'dflt')",
        ),
        (
            "class P:\n    pass\np = P()\nsetattr(p, 'a', 1)\nv = p.a\n"
            "delattr(p, 'a')\nv, hasattr(p, 'a')",
            "(1, False)",
        ),
        ("class P:\n    count = 0\nP.count += 1\nP.count", "1"),
        (
            "class E(Exception):\n    pass\ntry:\n    raise E('x')\n"
            "except E as e:\n    r = str(e)\nr",
            "'x'",
        ),
        ("class K:\n    def register(self):\n        return 'mine'\nK().register()", "'mine'"),
        ("def gen():\n    yield 1\n    yield 2\nlist(gen())", "[1, 2]"),
        ("printed_val = None\nprint('x')\nprinted", "'x\\n'"),
        ("dir(3)[:2]", "['as_integer_ratio', 'bit_count']"),
        ("x: int = 3\nx", "3"),
        ("'{:{}}'.format('a', 3)", "'a  '"),
    ],
)
async def test_allowed_code(sb: LocalSandbox, code: str, display: str | None) -> None:
    result = await run(sb, code)
    assert result.error is None, result.error
    assert result.display == display


async def test_pprint_writes_to_captured_output(sb: LocalSandbox) -> None:
    result = await run(
        sb,
        "import pprint, io\npprint.pp({'b': 1})\ns = io.StringIO()\n"
        "pprint.pprint([1], stream=s)\nprint(s.getvalue(), end='')",
    )
    assert result.stdout == "{'b': 1}\n[1]\n"


async def test_print_to_a_file_object(sb: LocalSandbox) -> None:
    result = await run(sb, "import io\nf = io.StringIO()\nprint('x', file=f)\nf.getvalue()")
    assert result.display == "'x\\n'"
    assert result.stdout == "'x\\n'\n"


async def test_sandbox_random_does_not_touch_host_random(sb: LocalSandbox) -> None:
    import random

    random.seed(12345)
    expected = random.random()
    random.seed(12345)
    await run(sb, "import random\nrandom.seed(1)\nrandom.random()")
    assert random.random() == expected


async def test_works_without_limits() -> None:
    sandbox = LocalSandbox(limits=Limits(exec_timeout_s=None, memory_mb=None))
    try:
        result = await sandbox.execute("x = 'a' * 1000\nprint(len(x))\n'a'.ljust(5)")
        assert result.stdout == "1000\n'a    '\n"
    finally:
        await sandbox.aclose()
