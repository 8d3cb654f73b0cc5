"""MCP servers as tool sources (`[tools.mcp.NAME]`), through the official SDK's client.

Each server's tools are offered as `tools.SERVER__TOOL(...)` (a flat name: two
underscores between the server's name and the tool's, other characters that cannot be
in a Python name made underscores), their arguments checked against the server's
input schema on the host. A server is started when a run that offers its tools starts
(never at import or when settings load), serves every call of that run, and is stopped
(stdin closed, then its process tree killed: the SDK's shutdown) when the run ends.

The SDK's client lives in anyio cancel scopes that must be left by the task that
entered them, so one task per server owns its connection; calls reach it from any task.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from rlmrt.config import MCPServerSettings
from rlmrt.errors import MissingDependencyError, ToolError
from rlmrt.tools._model import Secrets, Tool, ToolNeeds, type_text

if TYPE_CHECKING:
    from mcp import Client

__all__ = ["MCPServer", "MCPTool", "open_servers", "tool_name"]

START_TIMEOUT_S = 60.0
STDERR_TAIL_CHARS = 1_000
_NOT_NAME = re.compile(r"\W")


def tool_name(server: str, tool: str) -> str:
    """How code calls `tool` of `server`: `SERVER__TOOL`, made a Python name."""
    name = _NOT_NAME.sub("_", f"{server}__{tool}")
    return f"mcp_{name}" if name[0].isdigit() else name


class MCPServer:
    """One configured MCP server and its connection (started by `start`)."""

    def __init__(self, name: str, settings: MCPServerSettings) -> None:
        self.name = name
        self.settings = settings
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._stderr: IO[str] | None = None

    def _target(self) -> Any:
        """The SDK's transport: the URL, or the command on stdio with its stderr kept
        in `self._stderr` (not the terminal's: a failed start's error quotes it)."""
        from mcp.client.stdio import StdioServerParameters, stdio_client

        if self.settings.url is not None:
            return self.settings.url
        assert self.settings.command is not None  # the settings hold one of the two
        params = StdioServerParameters(
            command=self.settings.command,
            args=list(self.settings.args),
            env=dict(self.settings.env) or None,
            cwd=self.settings.cwd,
        )
        # open while the server runs: `aclose` closes it
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        return stdio_client(params, errlog=self._stderr)

    def _said(self) -> str:
        """The end of what the server wrote on stderr, for an error message."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()[-STDERR_TAIL_CHARS:].strip()
        return f"; it said: {text}" if text else ""

    async def start(self) -> list[MCPTool]:
        """Connect (starting the server's process for stdio) and list its tools."""
        try:
            from mcp import Client
        except ImportError as exc:
            raise MissingDependencyError("mcp", "mcp") from exc
        self._owner = asyncio.ensure_future(self._own(Client(self._target())))
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait(
            {ready, self._owner}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        client = self._client
        if client is None:
            why = f"{type(self._error).__name__}: {self._error}" if self._error else "timed out"
            said = self._said()
            await self.aclose()
            raise ToolError(f"MCP server {self.name!r} did not start: {why}{said}")
        try:
            listed = await client.list_tools()
        except Exception as exc:
            await self.aclose()
            raise ToolError(f"MCP server {self.name!r} did not list its tools: {exc}") from exc
        tools = []
        for listed_tool in listed.tools:
            found = MCPTool(
                self, listed_tool.name, listed_tool.description or "", listed_tool.input_schema
            )
            found.returns = _returns(listed_tool.output_schema)
            tools.append(found)
        return tools

    async def _own(self, client: Client) -> None:
        try:
            async with client:
                self._client = client
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # noqa: BLE001 - reported by `start` or the next call
            self._error = exc
        finally:
            self._client = None
            self._ready.set()

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float | None) -> Any:
        client = self._client
        if client is None:
            raise ToolError(f"MCP server {self.name!r} is not running")
        result = await client.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
        if result.is_error:
            raise ToolError(f"tools.{tool_name(self.name, tool)}() failed: {_text(result.content)}")
        if result.structured_content is not None:
            return _unwrapped(result.structured_content)
        return _text(result.content)

    async def aclose(self) -> None:
        """Stop the server (idempotent): its process is gone when this returns."""
        owner, self._owner = self._owner, None
        if owner is None:
            return
        self._stop.set()
        await asyncio.gather(owner, return_exceptions=True)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class MCPTool(Tool):
    """A tool of an MCP server."""

    def __init__(
        self, server: MCPServer, remote: str, description: str, schema: dict[str, Any]
    ) -> None:
        super().__init__(
            name=tool_name(server.name, remote),
            description=description or f"{remote} of the MCP server {server.name}",
            version="0.0.0",
            needs=ToolNeeds(),
            input_schema=schema,
            source=f"mcp server {server.name}",
        )
        self.server = server
        self.remote = remote
        self.timeout_s: float | None = None

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        names = list((self.input_schema.get("properties") or {}).keys())
        if len(args) > len(names):
            raise TypeError(
                f"tools.{self.name}() takes {len(names)} positional arguments"
                f" but {len(args)} were given"
            )
        arguments = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in arguments:
                raise TypeError(f"tools.{self.name}() got multiple values for argument {key!r}")
            arguments[key] = value
        _check_schema(self.name, self.input_schema, arguments)
        return arguments

    async def run(self, arguments: dict[str, Any], secrets: Secrets) -> Any:
        return await self.server.call(self.remote, arguments, self.timeout_s)

    async def aclose(self) -> None:
        await self.server.aclose()


def _check_schema(name: str, schema: dict[str, Any], arguments: dict[str, Any]) -> None:
    from jsonschema import validators  # type: ignore[import-untyped]

    validator = validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return
    error = errors[0]
    if error.validator == "required":
        raise TypeError(f"tools.{name}(): {error.message}")
    if error.validator == "additionalProperties":
        raise TypeError(f"tools.{name}(): unexpected argument ({error.message})")
    where = ".".join(str(p) for p in error.path) or "arguments"
    kind = TypeError if error.validator == "type" else ValueError
    raise kind(f"tools.{name}() argument {where!r}: {error.message}")


def _returns(schema: dict[str, Any] | None) -> str | None:
    """The result's Python type from an output schema (a wrapped plain value's own)."""
    if not schema:
        return None
    properties = schema.get("properties") or {}
    if list(properties) == ["result"]:
        return type_text(properties["result"])
    return "dict"


def _text(content: Sequence[Any]) -> str:
    return "\n".join(str(getattr(item, "text", "")) for item in content if hasattr(item, "text"))


def _unwrapped(value: Any) -> Any:
    """A tool's structured result; a plain value the server wrapped as {"result": v}."""
    if isinstance(value, dict) and list(value) == ["result"]:
        return value["result"]
    return value


async def open_servers(servers: Mapping[str, MCPServerSettings]) -> list[Tool]:
    """Start the servers and list their tools; stops the started ones if one fails."""
    started: list[MCPServer] = []
    tools: list[Tool] = []
    try:
        for name, settings in servers.items():
            server = MCPServer(name, settings)
            started.append(server)
            found = await server.start()
            if not found:  # nothing to call: no reason to keep it running
                await server.aclose()
            tools += found
    except BaseException:
        await asyncio.gather(*(s.aclose() for s in started), return_exceptions=True)
        raise
    return tools
