"""rlmrt's MCP server (for Claude Desktop, Claude Code and other MCP clients).

`rlm mcp serve` runs it; `server.build_server` builds it on the `mcp` SDK (the
`rlmrt[mcp]` extra), `service.RLMService` holds what its tools do. Nothing is imported
here, so `import rlmrt.mcp` stays cheap and works without the extra.
"""
