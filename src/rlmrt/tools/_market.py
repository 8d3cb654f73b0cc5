"""The tool marketplace: an index of MCP servers and Python tool packages, searched by
`rlm tools search` and installed from by `rlm tools install`.

An index is JSON, from a file or an http(s) URL, in the MCP registry's format: a
``servers`` list whose items are `server.json` documents (or the registry API's
``{"server": {...}, "_meta": {...}}`` wrappers), plus rlmrt's own ``tool_packages``
list of Python packages that provide tools (entry-point group `rlmrt.tools`)::

    {"servers": [{"name": "io.github.acme/weather", "description": "...",
                  "version": "1.2.0", "packages": [{"registryType": "npm",
                  "identifier": "@acme/weather", "version": "1.2.0",
                  "transport": {"type": "stdio"}}]}],
     "tool_packages": [{"name": "rlmrt-tool-sqlite", "version": "1.0.0",
                        "description": "...", "tools": ["sqlite"]}]}

Installing grants nothing: a Python package is installed with pip and its tools stay
ungranted until `[tools]` names them; an MCP server's launch command is written to
rlm.toml as a commented-out `[tools.mcp.NAME]` table, offered once the user uncomments it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlmrt.errors import UsageError

__all__ = [
    "IndexEntry",
    "LaunchCommand",
    "find_entry",
    "launch_command",
    "load_index",
    "mcp_table",
    "search_index",
    "server_key",
]

Kind = Literal["mcp", "python"]

#: how a package of each registry type is started when its entry gives no runtimeHint
_RUNNERS = {"npm": "npx", "pypi": "uvx", "oci": "docker"}


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One MCP server (a `server.json`) or one Python tool package of an index."""

    kind: Kind
    name: str
    version: str
    description: str
    title: str = ""
    #: the tools a Python package declares (its index entry says so)
    tools: tuple[str, ...] = ()
    #: the `server.json` of an MCP server
    server: dict[str, Any] = field(default_factory=dict)

    def matches(self, words: list[str]) -> bool:
        text = " ".join([self.name, self.title, self.description, *self.tools]).lower()
        return all(word in text for word in words)


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    """How rlmrt starts (or reaches) an MCP server: the `[tools.mcp.NAME]` table."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    #: environment variables the server needs that the index gives no value for
    needs_env: tuple[str, ...] = ()


def load_index(where: str) -> list[IndexEntry]:
    """The entries of the index at `where` (a file path or an http(s) URL)."""
    if re.match(r"^https?://", where):
        import httpx

        try:
            response = httpx.get(where, timeout=30, follow_redirects=True)
            response.raise_for_status()
            text = response.text
        except httpx.HTTPError as exc:
            raise UsageError(f"cannot read the tool index {where}: {exc}") from None
    else:
        try:
            text = Path(where).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the tool index {where}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"the tool index {where} is not JSON: {exc}") from None
    return parse_index(data, where)


def parse_index(data: Any, where: str = "the index") -> list[IndexEntry]:
    """The entries of an index document (see the module)."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: an index is a JSON object with servers and tool_packages")
    entries: list[IndexEntry] = []
    for position, item in enumerate(_list(data, "servers", where)):
        server = item.get("server", item) if isinstance(item, dict) else item
        entries.append(_server_entry(server, f"{where}: servers[{position}]"))
    for position, item in enumerate(_list(data, "tool_packages", where)):
        entries.append(_package_entry(item, f"{where}: tool_packages[{position}]"))
    return entries


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise UsageError(f"{where}: {key} is not a list")
    return value


def _text(item: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = item.get(key)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise UsageError(f"{where}: {key} is {'missing' if value is None else 'not a text'}")


def _server_entry(server: Any, where: str) -> IndexEntry:
    if not isinstance(server, dict):
        raise UsageError(f"{where}: a server is a JSON object (a server.json)")
    if not server.get("packages") and not server.get("remotes"):
        raise UsageError(f"{where}: the server has neither packages nor remotes")
    return IndexEntry(
        kind="mcp",
        name=_text(server, "name", where),
        version=_text(server, "version", where),
        description=_text(server, "description", where, required=False),
        title=_text(server, "title", where, required=False),
        server=server,
    )


def _package_entry(item: Any, where: str) -> IndexEntry:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: a tool package is a JSON object")
    tools = item.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise UsageError(f"{where}: tools is not a list of tool names")
    return IndexEntry(
        kind="python",
        name=_text(item, "name", where),
        version=_text(item, "version", where),
        description=_text(item, "description", where, required=False),
        tools=tuple(tools),
    )


def search_index(entries: list[IndexEntry], text: str) -> list[IndexEntry]:
    """The latest version of each entry whose name, title, description or tools hold
    every word of `text` (any case)."""
    words = text.lower().split()
    return [e for e in _latest(entries) if e.matches(words)]


def _latest(entries: list[IndexEntry]) -> list[IndexEntry]:
    best: dict[tuple[Kind, str], IndexEntry] = {}
    for entry in entries:
        key = (entry.kind, entry.name)
        if key not in best or _version_key(entry.version) > _version_key(best[key].version):
            best[key] = entry
    return list(best.values())


def _version_key(version: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def find_entry(entries: list[IndexEntry], wanted: str) -> IndexEntry:
    """The entry `NAME` (its latest version) or `NAME==VERSION`; a `UsageError` naming
    what the index has otherwise."""
    name, _, version = wanted.partition("==")
    name, version = name.strip(), version.strip()
    named = [e for e in entries if e.name == name]
    if not named:
        close = [e.name for e in search_index(entries, name.rsplit("/", 1)[-1])]
        hint = f" (did you mean: {', '.join(sorted(close))}?)" if close else ""
        raise UsageError(f"the tool index has no entry named {name!r}{hint}")
    if not version:
        return _latest(named)[0]
    for entry in named:
        if entry.version == version:
            return entry
    listed = ", ".join(sorted({e.version for e in named}, key=_version_key))
    raise UsageError(f"the tool index has {name} at {listed}, not at {version}")


def server_key(entry: IndexEntry) -> str:
    """The `[tools.mcp.KEY]` name of a server: the last part of its registry name as a
    Python identifier (its tools are called `tools.KEY__TOOL`)."""
    last = entry.name.rsplit("/", 1)[-1]
    key = re.sub(r"\W+", "_", last).strip("_").lower()
    if not key or key[0].isdigit():
        key = f"server_{key}"
    return key


def launch_command(entry: IndexEntry) -> LaunchCommand:
    """How to start the server of `entry`: its first stdio package (npm under npx, pypi
    under uvx, oci under docker, or its runtimeHint), else its streamable-HTTP remote."""
    server = entry.server
    for package in server.get("packages") or []:
        if not isinstance(package, dict):
            continue
        transport = package.get("transport") or {}
        if transport.get("type", "stdio") != "stdio":
            continue
        kind = str(package.get("registryType", ""))
        command = package.get("runtimeHint") or _RUNNERS.get(kind)
        identifier = package.get("identifier")
        if not command or not isinstance(identifier, str):
            continue
        version = package.get("version") or entry.version
        env: list[tuple[str, str]] = []
        needs: list[str] = []
        for variable in package.get("environmentVariables") or []:
            value = variable.get("value") or variable.get("default")
            if value is not None and not variable.get("isSecret"):
                env.append((str(variable["name"]), str(value)))
            else:
                needs.append(str(variable["name"]))
        args = _arguments(package.get("runtimeArguments"))
        if kind == "npm":
            reference = [f"{identifier}@{version}" if version else identifier]
            args = ["-y", *args] if command == "npx" else args
        elif kind == "pypi":
            reference = [f"{identifier}=={version}" if version else identifier]
        elif kind == "oci":
            tagged = (
                identifier
                if ":" in identifier.rsplit("/", 1)[-1] or not version
                else (f"{identifier}:{version}")
            )
            passed = [part for name, _ in env for part in ("-e", name)]
            passed += [part for name in needs for part in ("-e", name)]
            args = ["run", "-i", "--rm", *passed, *args]
            reference = [tagged]
        else:
            reference = [identifier]
        args += reference + _arguments(package.get("packageArguments"))
        return LaunchCommand(
            command=str(command), args=tuple(args), env=tuple(env), needs_env=tuple(needs)
        )
    for remote in server.get("remotes") or []:
        if isinstance(remote, dict) and remote.get("type") == "streamable-http":
            return LaunchCommand(url=str(remote["url"]))
    raise UsageError(
        f"{entry.name} has no stdio package (npm, pypi, oci) nor streamable-http remote"
        " rlmrt can start"
    )


def _arguments(given: Any) -> list[str]:
    """A server.json argument list as command-line words (positional: the value;
    named: the name, then the value when it has one)."""
    words: list[str] = []
    for argument in given or []:
        if not isinstance(argument, dict):
            continue
        value = argument.get("value", argument.get("default"))
        if argument.get("type") == "named":
            words.append(str(argument["name"]))
        if value is not None:
            words.append(str(value))
    return words


def mcp_table(key: str, launch: LaunchCommand) -> list[str]:
    """The `[tools.mcp.KEY]` table of `launch`, as TOML lines."""
    lines = [f"[tools.mcp.{key}]"]
    if launch.url is not None:
        lines.append(f"url = {json.dumps(launch.url)}")
        return lines
    lines.append(f"command = {json.dumps(launch.command)}")
    lines.append(f"args = {json.dumps(list(launch.args))}")
    if launch.env:
        pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in launch.env)
        lines.append(f"env = {{ {pairs} }}")
    return lines
