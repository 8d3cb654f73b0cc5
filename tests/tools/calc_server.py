"""A tiny MCP server for the tests (the SDK's MCPServer on stdio)."""

import os
import sys

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
    if sys.argv[1:2] == ["http"]:  # streamable HTTP on 127.0.0.1:PORT/mcp
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
