"""Code's calls of tools (`tools.NAME(...)`, `tools.batch`): each one counted in the
budget (`max_tool_calls`), run under the tree's concurrency limit and recorded as a
`ToolCalled` event."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.errors import ToolError
from rlmrt.events import ToolCalled
from rlmrt.tools import Tool, arguments_digest

if TYPE_CHECKING:
    from rlmrt.engine.run import Run

__all__ = ["NO_TOOLS", "call_tool"]

NO_TOOLS = (
    "no tools are offered to this run (give them with completion(..., tools=[...]), or"
    " grant installed ones in [tools] of rlm.toml)"
)


async def call_tool(run: Run, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run the tool `name` for `run`'s code; its result as JSON data."""
    tree = run.tree
    started = time.perf_counter()
    tool: Tool | None = None
    error: str | None = None
    try:
        if tree.tools is None:
            raise ToolError(NO_TOOLS)
        tool = tree.tools.find(name)
        tree.budget.count_tool_call()
        async with tree.semaphore:
            return await tree.tools.invoke(tool, args, kwargs)
    except BaseException as exc:  # recorded, then raised on
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise
    finally:
        tree.emit(
            ToolCalled(
                run_id=tree.run_id,
                call_id=tree.new_call_id(),
                parent_call_id=run.call_id,
                depth=run.depth,
                tool=name,
                version=tool.version if tool is not None else None,
                arguments_digest=arguments_digest(args, kwargs),
                ok=error is None,
                error=error,
                duration_s=time.perf_counter() - started,
            )
        )
