"""Tools: typed functions that code in the REPL calls as `tools.NAME(...)`.

A tool runs on the host (where credentials live) and is reached from every sandbox
kind through the kernel's host-function table (`tool_call`, `tool_batch`), like
`llm_query`. Write one with `@tool`; offer it to a run with `RLM(...).completion(...,
tools=[...])`, or install a package that declares it in the `rlmrt.tools` entry-point
group and grant it by name in `[tools]` of rlm.toml (`sqlite = ">=1.2,<2"`). The tools
of MCP servers configured in `[tools.mcp.NAME]` are offered as `tools.NAME__TOOL`.
"""

from rlmrt.tools._box import ToolBox, arguments_digest
from rlmrt.tools._discovery import (
    ENTRY_POINT_GROUP,
    InstalledTool,
    changed_tools,
    installed_tools,
    open_toolbox,
)
from rlmrt.tools._function import FunctionTool, tool
from rlmrt.tools._model import Secrets, Tool, ToolNeeds

__all__ = [
    "ENTRY_POINT_GROUP",
    "FunctionTool",
    "InstalledTool",
    "Secrets",
    "Tool",
    "ToolBox",
    "ToolNeeds",
    "arguments_digest",
    "changed_tools",
    "installed_tools",
    "open_toolbox",
    "tool",
]
