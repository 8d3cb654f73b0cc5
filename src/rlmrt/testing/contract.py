"""`tool_contract(tool, call=...)`: what every tool owes the code that calls it.

A tool author calls it from a test with one good call of the tool; it checks, on the
tool itself (not through the host's safety nets, which would hide a faulty tool):

- its schema: a JSON object schema whose every argument has a type and a description,
  a semver version, a one-line description, a name code can write as ``tools.NAME``;
- its validation errors: a missing, unknown or mistyped argument (made up from the
  schema), and each of the author's `bad_calls`, raises a one-line `TypeError` or
  `ValueError` that names the argument;
- its timeout behaviour: the good call ends within `call_timeout_s`, an async tool
  never blocks the event loop, and a `slow_call` is cut at `timeout_s`;
- that it never leaks its secrets: run with a made-up value for each secret it
  declares, neither its result nor its error text contains one.

A broken promise is an `AssertionError` saying which and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rlmrt.tools import Tool

__all__ = ["ToolContractError", "tool_contract"]

T = TypeVar("T")

#: a value of the wrong type for each JSON schema type (none of them coerces)
_WRONG_VALUE: dict[str, Any] = {
    "string": [1, 2],
    "integer": "not a number",
    "number": "not a number",
    "boolean": "perhaps",
    "array": 5,
    "object": 5,
}
_UNKNOWN_ARGUMENT = "not_an_argument_of_this_tool"
#: how long an async tool may hold the event loop in one go
_LOOP_STALL_S = 0.25


class ToolContractError(AssertionError):
    """A tool broke its contract."""


def tool_contract(
    tool: Tool,
    call: Mapping[str, Any],
    *,
    bad_calls: Mapping[str, Mapping[str, Any]] | None = None,
    secrets: Mapping[str, str] | None = None,
    slow_call: Mapping[str, Any] | None = None,
    timeout_s: float = 0.5,
    call_timeout_s: float = 30.0,
) -> Any:
    """Check `tool` keeps the contract (see the module); return the good `call`'s result.

    `bad_calls` maps an argument's name to keyword arguments that are wrong because of
    it (``{"max_rows": {"sql": "select 1", "max_rows": -1}}``): the tool must refuse
    them with an error naming that argument, when binding or when running. `secrets`
    gives values to the secrets the tool declares (others get made-up ones).
    """
    _check_schema(tool)
    _check_generated_bad_calls(tool, call)
    values = {name: f"canary-{name}-{uuid.uuid4().hex}" for name in tool.needs.secrets}
    values.update(secrets or {})
    for argument, kwargs in (bad_calls or {}).items():
        _check_bad_call(tool, argument, kwargs, values, call_timeout_s)
    result = _check_good_call(tool, call, values, call_timeout_s)
    if slow_call is not None:
        _check_timeout(tool, slow_call, values, timeout_s)
    return result


def _fail(tool: Tool, problem: str) -> ToolContractError:
    return ToolContractError(f"tools.{tool.name} breaks its contract: {problem}")


def _check_schema(tool: Tool) -> None:
    from packaging.version import InvalidVersion, Version

    from rlmrt.tools import Tool
    from rlmrt.tools._model import name_problem

    if not isinstance(tool, Tool):
        raise ToolContractError(
            f"{tool!r} is not a Tool (make one with @tool or FunctionTool(function))"
        )
    problem = name_problem(tool.name)
    if problem is not None:
        raise _fail(tool, problem)
    try:
        Version(tool.version)
    except InvalidVersion:
        raise _fail(tool, f"its version {tool.version!r} is not a version (1.2.0)") from None
    if not tool.summary() or tool.summary() == tool.name:
        raise _fail(tool, "it has no description (the first line of its docstring)")
    schema = tool.input_schema
    try:
        json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise _fail(tool, f"its input schema is not JSON: {exc}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties", {}), dict):
        raise _fail(tool, "its input schema is not a JSON object schema with properties")
    properties: dict[str, Any] = schema.get("properties", {})
    missing = set(schema.get("required", ())) - set(properties)
    if missing:
        raise _fail(tool, f"its schema requires arguments it does not define: {sorted(missing)}")
    for name, prop in properties.items():
        if not isinstance(prop, dict) or not (
            {"type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref"} & set(prop)
        ):
            raise _fail(tool, f"argument {name!r} has no type in its schema")
        if not str(prop.get("description") or "").strip():
            raise _fail(
                tool,
                f"argument {name!r} has no description (the Args: section of its docstring)",
            )
    tool.signature()


def _check_generated_bad_calls(tool: Tool, call: Mapping[str, Any]) -> None:
    try:
        tool.arguments((), call)
    except (TypeError, ValueError) as exc:
        raise _fail(tool, f"the good call {dict(call)!r} is refused: {exc}") from None
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    for name in tool.input_schema.get("required", ()):
        wrong = {k: v for k, v in call.items() if k != name}
        _expect_refusal(tool, name, wrong, f"without the required argument {name!r}")
    _expect_refusal(
        tool, _UNKNOWN_ARGUMENT, {**call, _UNKNOWN_ARGUMENT: 1}, "with an unknown argument"
    )
    for name, prop in properties.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if isinstance(kind, str) and kind in _WRONG_VALUE:
            wrong = {**call, name: _WRONG_VALUE[kind]}
            _expect_refusal(tool, name, wrong, f"with {_WRONG_VALUE[kind]!r} for {name!r}")


def _expect_refusal(tool: Tool, argument: str, kwargs: Mapping[str, Any], what: str) -> None:
    try:
        tool.arguments((), kwargs)
    except (TypeError, ValueError) as exc:
        _check_message(tool, argument, str(exc), what)
        return
    raise _fail(tool, f"a call {what} was accepted")


def _check_message(tool: Tool, argument: str, message: str, what: str) -> None:
    if argument not in message:
        raise _fail(tool, f"the error of a call {what} does not name {argument!r}: {message}")
    if "\n" in message.strip() or "Traceback" in message:
        raise _fail(tool, f"the error of a call {what} is not one line: {message!r}")


def _check_bad_call(
    tool: Tool,
    argument: str,
    kwargs: Mapping[str, Any],
    secrets: Mapping[str, str],
    call_timeout_s: float,
) -> None:
    from rlmrt.tools import Secrets

    what = f"{dict(kwargs)!r} (bad because of {argument!r})"
    try:
        checked = tool.arguments((), kwargs)
    except (TypeError, ValueError) as exc:
        _check_message(tool, argument, str(exc), what)
        return
    try:
        _run_on_a_loop(tool.run(checked, Secrets(secrets)), call_timeout_s)
    except (TypeError, ValueError) as exc:
        _check_message(tool, argument, str(exc), what)
        _check_no_secret(tool, str(exc), secrets, f"the error of {what}")
        return
    except Exception as exc:  # noqa: BLE001 - whatever the tool raised is the finding
        raise _fail(
            tool,
            f"a call {what} raised {type(exc).__name__}, not a TypeError or ValueError: {exc}",
        ) from None
    raise _fail(tool, f"a call {what} was accepted")


def _check_good_call(
    tool: Tool, call: Mapping[str, Any], secrets: Mapping[str, str], call_timeout_s: float
) -> Any:
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    from rlmrt.tools import Secrets

    arguments = tool.arguments((), call)
    started = time.monotonic()
    try:
        value, stall = _run_on_a_loop(
            _watching_the_loop(tool.run(arguments, Secrets(secrets))), call_timeout_s
        )
    except asyncio.TimeoutError:
        raise _fail(tool, f"the good call took longer than {call_timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - whatever the tool raised is the finding
        _check_no_secret(tool, str(exc), secrets, "the good call's error")
        raise _fail(tool, f"the good call failed: {type(exc).__name__}: {exc}") from None
    if stall > _LOOP_STALL_S:
        raise _fail(
            tool,
            f"it held the event loop for {stall:.2f} s in one go (of"
            f" {time.monotonic() - started:.2f} s): an async tool must await, not block"
            " (or be a plain function: those run in a thread)",
        )
    try:
        data = to_jsonable_python(value)
    except PydanticSerializationError:
        kind = type(value).__name__
        raise _fail(tool, f"the good call returned a {kind}, not JSON data") from None
    _check_no_secret(tool, json.dumps(data, ensure_ascii=False), secrets, "its result")
    return value


def _check_timeout(
    tool: Tool, slow_call: Mapping[str, Any], secrets: Mapping[str, str], timeout_s: float
) -> None:
    from rlmrt.tools import Secrets

    arguments = tool.arguments((), slow_call)
    started = time.monotonic()
    try:
        _run_on_a_loop(tool.run(arguments, Secrets(secrets)), timeout_s)
    except asyncio.TimeoutError:
        took = time.monotonic() - started
        if took > timeout_s + 0.5:
            raise _fail(
                tool,
                f"the slow call was cut at {took:.2f} s, not at the {timeout_s:g} s timeout:"
                " it blocks the event loop",
            ) from None
        return
    except Exception as exc:  # noqa: BLE001 - whatever the tool raised is the finding
        raise _fail(tool, f"the slow call failed: {type(exc).__name__}: {exc}") from None
    took = time.monotonic() - started
    if took > timeout_s:
        raise _fail(
            tool,
            f"the slow call ran {took:.2f} s, past the {timeout_s:g} s timeout, and was not"
            " cut: it blocks the event loop",
        )
    raise _fail(tool, f"the slow call ended within {timeout_s:g} s: it is not slow")


def _check_no_secret(tool: Tool, text: str, secrets: Mapping[str, str], where: str) -> None:
    for name, value in secrets.items():
        if value and value in text:
            raise _fail(tool, f"{where} contains the value of its secret {name}")


async def _watching_the_loop(work: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """`work`'s value and the longest time the loop went without a turn meanwhile."""
    longest = 0.0
    last = time.monotonic()

    def beat_now() -> None:
        nonlocal longest, last
        now = time.monotonic()
        longest = max(longest, now - last - 0.01)
        last = now

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.01)
            beat_now()

    beat = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)  # the heartbeat starts before the work
    last = time.monotonic()
    try:
        value = await work
    finally:
        beat_now()  # a block at the end of the work is seen too
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    return value, longest


def _run_on_a_loop(work: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """Run `work` on a new loop, cut at `timeout_s` as the host cuts a tool call. The
    loop is closed without waiting for a sync tool's thread (it cannot be stopped)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(work, timeout_s))
    finally:
        loop.close()
