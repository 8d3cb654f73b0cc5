"""The testing kit for tool authors: `tool_contract` catches each broken promise on
real tools, `assert_tool_called` reads real runs' trajectories, and the pytest plugin
works as an author's test suite uses it (a pytest run in a subprocess)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from rlmrt.testing import ToolContractError, assert_tool_called, tool_calls, tool_contract
from rlmrt.testing.pytest_plugin import ScriptedRLMs
from rlmrt.tools import Secrets, tool


@tool(version="1.0.0", secrets=["GREETER_TOKEN"])
async def greet(
    name: str, times: Annotated[int, Field(ge=1, le=5)] = 1, secrets: Secrets | None = None
) -> str:
    """Greet someone, maybe several times.

    Args:
        name: who to greet
        times: how many greetings (1 to 5); a negative sleep time is refused
    """
    if name == "slowly":
        await asyncio.sleep(5)
    if name == "":
        raise ValueError("name must not be empty")
    token = secrets["GREETER_TOKEN"] if secrets else ""
    return " ".join([f"hello {name}"] * times) + f" ({len(token)}-char token)"


def test_a_well_made_tool_keeps_the_contract() -> None:
    started = time.monotonic()
    result = tool_contract(
        greet,
        call={"name": "ada", "times": 2},
        bad_calls={"times": {"name": "ada", "times": 9}, "name": {"name": ""}},
        slow_call={"name": "slowly"},
        timeout_s=0.3,
    )
    assert result.startswith("hello ada hello ada (")
    assert time.monotonic() - started < 3


def _broken(problem: str, made: object, **contract: object) -> None:
    with pytest.raises(ToolContractError, match=problem):
        tool_contract(made, **contract)  # type: ignore[arg-type]


def test_an_undescribed_argument_and_a_missing_description_break_it() -> None:
    @tool
    def bare(x: int) -> int:
        return x

    _broken("it has no description", bare, call={"x": 1})

    @tool
    def half(x: int) -> int:
        """Half a description (no Args section)."""
        return x

    _broken("argument 'x' has no description", half, call={"x": 1})


def test_a_secret_in_the_result_or_an_error_breaks_it() -> None:
    @tool(secrets=["LEAKY_TOKEN"])
    def leaky(text: str, secrets: Secrets) -> str:
        """Echo a text.

        Args:
            text: what to echo
        """
        if text == "fail":
            raise RuntimeError(f"refused with token {secrets['LEAKY_TOKEN']}")
        return f"{text} {secrets['LEAKY_TOKEN']}"

    _broken("its result contains the value of its secret LEAKY_TOKEN", leaky, call={"text": "a"})
    _broken("the good call's error contains the value of its secret", leaky, call={"text": "fail"})


def test_an_error_that_does_not_name_the_argument_breaks_it() -> None:
    @tool
    def divide(a: float, b: float) -> float:
        """Divide.

        Args:
            a: the dividend
            b: the divisor
        """
        if b == 0:
            raise ValueError("cannot do that")
        return a / b

    _broken(
        "does not name 'b': cannot do that",
        divide,
        call={"a": 1, "b": 2},
        bad_calls={"b": {"a": 1, "b": 0}},
    )
    _broken("was accepted", divide, call={"a": 1, "b": 2}, bad_calls={"a": {"a": 1, "b": 1}})


def test_blocking_the_event_loop_and_a_slow_call_that_is_not_slow_break_it() -> None:
    @tool
    async def blocker(seconds: float) -> str:
        """Sleep the wrong way.

        Args:
            seconds: how long
        """
        time.sleep(seconds)  # noqa: ASYNC251 - the fault under test
        return "done"

    _broken("held the event loop for", blocker, call={"seconds": 0.4})
    _broken(
        "it blocks the event loop",
        blocker,
        call={"seconds": 0},
        slow_call={"seconds": 1.2},
        timeout_s=0.2,
    )
    _broken("the slow call ended within", greet, call={"name": "a"}, slow_call={"name": "b"})


@tool(version="2.1.0")
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: one
        b: the other
    """
    return a + b


CODE = """\
```repl
total = tools.add(a=1, b=2) + tools.add(3, 4)
pairs = tools.batch([("add", {"a": 5, "b": 5})])
try:
    tools.add(a="x", b=1)
except TypeError as exc:
    print(exc)
FINAL(total + pairs[0])
```"""


@pytest.mark.parametrize("kind", ["local", "process"])
def test_assert_tool_called_reads_the_runs_calls(scripted_rlm: ScriptedRLMs, kind: str) -> None:
    rlm = scripted_rlm([CODE], sandbox=kind)
    result = rlm.completion("add", context="c", tools=[add])
    assert result.answer == "20"
    assert scripted_rlm.server is not None and len(scripted_rlm.server.requests) == 1
    assert len(tool_calls(result)) == 4
    assert len(assert_tool_called(result, "add")) == 4
    assert_tool_called(result, "tools.add", arguments={"a": 1, "b": 2}, times=1)
    assert_tool_called(result, "add", where={"ok": False}, times=1)
    assert_tool_called(result, "add", where=lambda call: call.version == "2.1.0", times=4)
    with pytest.raises(AssertionError, match=r"called 3 times: the run made 4 call\(s\) of"):
        assert_tool_called(result, "add", times=3)
    with pytest.raises(AssertionError, match=r"tools.sqlite to be called at least once.*add"):
        assert_tool_called(result, "sqlite")
    with pytest.raises(AssertionError, match=r"4 call.*0 of them matching"):
        assert_tool_called(result, "add", arguments={"a": 3, "b": 4})  # passed by position


def test_a_run_without_a_trajectory_says_so(scripted_rlm: ScriptedRLMs) -> None:
    rlm = scripted_rlm(["FINAL(x)"], save_trajectory=False)
    result = rlm.completion("q", context="c")
    with pytest.raises(AssertionError, match="kept no trajectory"):
        assert_tool_called(result, "add")


AUTHOR_TESTS = '''
from rlmrt.testing import assert_tool_called, tool_contract
from rlmrt.tools import tool

@tool(version="0.2.0")
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: what to shout
    """
    return text.upper()

def test_contract():
    assert tool_contract(shout, call={"text": "hi"}) == "HI"

def test_from_each_sandbox(scripted_rlm, rlm_sandbox_kind):
    rlm = scripted_rlm(["```repl\\nFINAL(tools.shout(text='hey'))\\n```"],
                       sandbox=rlm_sandbox_kind)
    result = rlm.completion("shout", context="c", tools=[shout])
    assert result.answer == "HEY"
    assert_tool_called(result, "shout", where={"ok": True}, times=1)

def test_sandbox(rlm_sandbox):
    assert rlm_sandbox.execute("print(6 * 7)").stdout == "42\\n"
'''


def _author_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest on an author's test file, with only rlmrt's plugin loaded."""
    (folder / "test_shout.py").write_text(textwrap.dedent(AUTHOR_TESTS))
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "rlmrt.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            *args,
            str(folder),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
def test_an_authors_suite_runs_on_each_sandbox_kind(tmp_path: Path) -> None:
    done = _author_run(tmp_path, "-v", "--rlm-sandboxes=local,process")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in (
        "test_contract PASSED",
        "test_from_each_sandbox[local] PASSED",
        "test_from_each_sandbox[process] PASSED",
        "test_sandbox[local] PASSED",
        "test_sandbox[process] PASSED",
    ):
        assert name in done.stdout
    assert "5 passed" in done.stdout


def test_the_plugin_is_registered_and_imports_nothing_heavy() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the 3.10 suite
        import tomli as tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    entry = pyproject["project"]["entry-points"]["pytest11"]
    assert entry == {"rlmrt": "rlmrt.testing.pytest_plugin"}
    code = (
        "import sys; import rlmrt.testing.pytest_plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('rlmrt')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['rlmrt', 'rlmrt.testing', 'rlmrt.testing.pytest_plugin']"
