"""The tools of one run: which are offered, why others are not, and one call of one.

A call is bounded like a code execution: `call_timeout_s` of wall time and
`output_bytes` of result (a text is cut with a marker; a larger value is refused). What
a tool raises reaches code as a `ToolError` of one line; the granted secrets' values
are blanked out of results and errors, so they reach neither the sandbox nor the
trajectory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from rlmrt.config import ToolSettings
from rlmrt.errors import ToolError
from rlmrt.tools._model import Secrets, Tool

__all__ = ["ToolBox", "arguments_digest"]

_HIDDEN = "***"


class ToolBox:
    """The tools offered to a run (by name), the ones refused (name -> why), and the
    secrets each offered tool was granted (names of environment variables)."""

    def __init__(
        self,
        offered: Sequence[Tool],
        settings: ToolSettings,
        *,
        refused: Mapping[str, str] | None = None,
        secrets: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.tools: dict[str, Tool] = {}
        for tool in offered:
            if tool.name in self.tools:
                raise ToolError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self.refused = dict(refused or {})
        self.settings = settings
        self._secrets = {name: tuple(names) for name, names in (secrets or {}).items()}

    def prompt_lines(self) -> list[str]:
        """One line per offered tool for the system prompt: its signature and summary."""
        return [f"tools.{t.signature()}: {t.summary()}" for t in self.tools.values()]

    def record(self) -> dict[str, dict[str, str | None]]:
        """What a run records of each offered tool (`RunStarted.tools`): its version,
        schema digest and source, so a replay can tell when the tool changed since."""
        return {
            name: {"version": t.version, "schema_digest": t.schema_digest(), "source": t.source}
            for name, t in self.tools.items()
        }

    def find(self, name: str) -> Tool:
        """The offered tool `name`; a `ToolError` saying why there is none."""
        found = self.tools.get(name)
        if found is not None:
            return found
        if name in self.refused:
            raise ToolError(f"tools.{name} is not offered to this run: {self.refused[name]}")
        offered = ", ".join(sorted(self.tools)) or "(none)"
        raise ToolError(f"there is no tool named {name!r}; offered tools: {offered}")

    def secrets_of(self, tool: Tool) -> Secrets:
        names = self._secrets.get(tool.name, ())
        return Secrets({n: os.environ[n] for n in names if n in os.environ})

    async def invoke(self, tool: Tool, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run `tool` for code: its result as JSON data, within the limits."""
        arguments = tool.arguments(args, kwargs)  # TypeError / ValueError naming the argument
        secrets = self.secrets_of(tool)
        limit = self.settings.call_timeout_s
        try:
            value = await asyncio.wait_for(tool.run(arguments, secrets), limit)
        except asyncio.TimeoutError:
            raise ToolError(
                f"tools.{tool.name}() took longer than {limit:g} s (tool_timeout_s)"
            ) from None
        except ToolError as exc:  # already names the tool (an MCP server's error)
            raise ToolError(_scrub(str(exc), secrets)) from None
        except Exception as exc:  # noqa: BLE001 - the tool's failure is data for the code
            line = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ToolError(f"tools.{tool.name}() failed: {_scrub(line, secrets)}") from None
        return self._bounded(tool, _as_data(tool, value), secrets)

    def _bounded(self, tool: Tool, value: Any, secrets: Secrets) -> Any:
        if secrets:
            value = json.loads(_scrub(json.dumps(value, ensure_ascii=False), secrets))
        cap = self.settings.output_bytes
        if isinstance(value, str):
            data = value.encode("utf-8")
            if len(data) <= cap:
                return value
            kept = data[:cap].decode("utf-8", "ignore")
            return kept + f"\n... [tool output truncated: {len(data) - cap} more bytes]"
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > cap:
            raise ToolError(
                f"tools.{tool.name}() returned {size:,} bytes of data, over the"
                f" {cap:,}-byte tool_output_bytes limit; ask for less"
            )
        return value

    async def aclose(self) -> None:
        """Release what the tools hold (MCP servers: stopped)."""
        errors: list[BaseException] = []
        for tool in self.tools.values():
            try:
                await tool.aclose()
            except Exception as exc:  # noqa: BLE001 - close every tool, then report
                errors.append(exc)
        if errors:
            raise ToolError(f"closing tools failed: {errors[0]}") from errors[0]


def _as_data(tool: Tool, value: Any) -> Any:
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        raise ToolError(
            f"tools.{tool.name}() returned a {type(value).__name__}, which is not JSON data"
        ) from None


def _scrub(text: str, secrets: Secrets) -> str:
    for value in secrets.values():
        if value:
            text = text.replace(value, _HIDDEN)
    return text


def arguments_digest(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """A short digest of a call's arguments: the event records it, not the arguments
    (they may be large, or private)."""
    text = json.dumps([list(args), dict(kwargs)], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
