"""Assertions over what a run did, read from its trajectory: `assert_tool_called`.

A test of a tool (or of a prompt that should use one) asserts on the run's events,
not on the model's wording: which tools the code called, how often, whether they
failed, with which arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    from rlmrt import RunResult
    from rlmrt.events import ToolCalled

    Where: TypeAlias = Callable[[ToolCalled], bool] | Mapping[str, Any]

__all__ = ["assert_tool_called", "tool_calls"]


def tool_calls(result: RunResult | Path | str) -> list[ToolCalled]:
    """The `tool_called` events of a run (its result, or its trajectory file)."""
    from rlmrt.events import ToolCalled
    from rlmrt.observe.trajectory import read_events

    path = result if isinstance(result, (Path, str)) else result.trajectory_path
    if path is None:
        raise AssertionError(
            "the run kept no trajectory (trajectory_dir is off): nothing to read its tool"
            " calls from"
        )
    return [event for event in read_events(Path(path)) if isinstance(event, ToolCalled)]


def assert_tool_called(
    result: RunResult | Path | str,
    name: str,
    *,
    where: Where | None = None,
    arguments: Mapping[str, Any] | None = None,
    times: int | None = None,
) -> list[ToolCalled]:
    """Assert the run called tool `name` (``"sqlite"`` or ``"tools.sqlite"``); return
    the matching calls.

    `where` keeps the calls it accepts: a function of the `ToolCalled` event, or
    the event's fields and the values they must have (``{"ok": False}``).
    `arguments` keeps the calls made with exactly these keyword arguments (compared by
    the digest the event records: code that passed them positionally does not match).
    `times` is the exact number of matching calls wanted (default: at least one).
    """
    from rlmrt.tools import arguments_digest

    tool = name.removeprefix("tools.")
    calls = tool_calls(result)
    named = [call for call in calls if call.tool == tool]
    matching = [call for call in named if _accepts(call, where)]
    if arguments is not None:
        digest = arguments_digest((), dict(arguments))
        matching = [call for call in matching if call.arguments_digest == digest]
    count = len(matching)
    if (times is None and count == 0) or (times is not None and count != times):
        wanted = "at least once" if times is None else f"{times} time{'s' * (times != 1)}"
        seen = ", ".join(sorted({c.tool for c in calls})) or "no tool"
        detail = f"{len(named)} call(s) of tools.{tool}"
        if where is not None or arguments is not None:
            detail += f", {count} of them matching"
        raise AssertionError(
            f"expected tools.{tool} to be called {wanted}: the run made {detail}"
            f" (it called: {seen})"
        )
    return matching


def _accepts(call: ToolCalled, where: Where | None) -> bool:
    if where is None:
        return True
    if callable(where):
        return bool(where(call))
    for field, value in where.items():
        if not hasattr(call, field):
            raise AssertionError(f"a tool_called event has no field {field!r}")
        if getattr(call, field) != value:
            return False
    return True
