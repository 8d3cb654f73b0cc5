"""What the MCP tests expect of the server, shared by the in-process and transport tests."""

from __future__ import annotations

TOOLS = {
    "rlm_completion",
    "execute_python",
    "get_repl_context",
    "set_repl_context",
    "clear_repl_context",
    "list_sessions",
    "destroy_session",
    "set_project",
    "list_projects",
    "context_search",
    "index_project",
    "memory_remember",
    "memory_recall",
    "memory_forget",
    "feedback",
}


def repl(code: str) -> str:
    """A model reply holding one ```repl block."""
    return f"```repl\n{code}\n```"
