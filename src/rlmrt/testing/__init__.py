"""Test helpers shipped with rlmrt, for rlmrt's own tests and for users' tests.

`ScriptedOpenAIServer` is a real OpenAI-compatible HTTP server on 127.0.0.1 whose
replies come from a handler you write (see `rlmrt.testing.server`). For tool authors:
`tool_contract` (what every tool owes its callers), `assert_tool_called` (what a run's
code called), and the pytest fixtures of `rlmrt.testing.pytest_plugin`. Names are
imported on first use, so `import rlmrt.testing` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmrt.testing.contract import ToolContractError, tool_contract
    from rlmrt.testing.packages import SimpleIndex, build_wheel
    from rlmrt.testing.scripts import ChatRequest, Handler, Reply, ScriptedReplies, scripted
    from rlmrt.testing.server import ScriptedOpenAIServer
    from rlmrt.testing.trajectory import assert_tool_called, tool_calls

__all__ = [
    "ChatRequest",
    "Handler",
    "Reply",
    "ScriptedOpenAIServer",
    "ScriptedReplies",
    "SimpleIndex",
    "ToolContractError",
    "assert_tool_called",
    "build_wheel",
    "scripted",
    "tool_calls",
    "tool_contract",
]

_LAZY = {name: "rlmrt.testing.scripts" for name in __all__}
_LAZY["ScriptedOpenAIServer"] = "rlmrt.testing.server"
_LAZY.update(dict.fromkeys(("ToolContractError", "tool_contract"), "rlmrt.testing.contract"))
_LAZY.update(dict.fromkeys(("SimpleIndex", "build_wheel"), "rlmrt.testing.packages"))
_LAZY.update(dict.fromkeys(("assert_tool_called", "tool_calls"), "rlmrt.testing.trajectory"))


def __getattr__(name: str) -> Any:
    # Lazy so that `python -m rlmrt.testing.server` does not import the module twice.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rlmrt.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
