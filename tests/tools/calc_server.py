"""A tiny MCP server for the tests (the SDK's MCPServer on stdio)."""

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def fail(why: str) -> str:
    """Always fails."""
    raise ValueError(f"refused: {why}")


if __name__ == "__main__":
    server.run()
