"""Which tools a run is offered: installed ones (entry-point group `rlmrt.tools`)
granted by name in `[tools]` with their version pins, the ones given to the run, and
the tools of the MCP servers of `[tools.mcp.*]`; each only when its needs are granted.

A granted tool that is not installed, or whose installed version does not match its
pin, stops the run at its start (`ConfigError` naming both versions); a tool whose
needs are not granted is not offered, and calling it says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmrt.config import ToolGrant, ToolSettings
from rlmrt.errors import ConfigError
from rlmrt.tools._box import ToolBox
from rlmrt.tools._function import FunctionTool
from rlmrt.tools._model import Tool

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstalledTool",
    "changed_tools",
    "installed_tools",
    "open_toolbox",
]

ENTRY_POINT_GROUP = "rlmrt.tools"


@dataclass(frozen=True, slots=True)
class InstalledTool:
    """An entry of the `rlmrt.tools` group: its tool, or why it could not be loaded."""

    name: str
    package: str
    tool: Tool | None
    error: str | None = None


def installed_tools() -> dict[str, InstalledTool]:
    """The tools installed packages provide, by entry-point name."""
    from importlib.metadata import entry_points  # not at import: runs without tools skip it

    found: dict[str, InstalledTool] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found[point.name] = _load(point)
    return found


def _load(point: EntryPoint) -> InstalledTool:
    dist = point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "(unknown package)"
    try:
        loaded: Any = point.load()
        tool = loaded if isinstance(loaded, Tool) else FunctionTool(loaded, name=point.name)
    except Exception as exc:  # noqa: BLE001 - a broken package is reported, not fatal
        return InstalledTool(point.name, package, None, f"{type(exc).__name__}: {exc}")
    if tool.name != point.name:
        error = f"the entry point {point.name!r} holds a tool named {tool.name!r}"
        return InstalledTool(point.name, package, None, error)
    tool.source = package
    return InstalledTool(point.name, package, tool)


def changed_tools(recorded: Mapping[str, Mapping[str, str | None]]) -> list[str]:
    """One line per tool a run offered (`RunStarted.tools`) whose installed package now
    provides another version or schema, or provides it no longer. Tools given to the run
    in code or served by MCP servers have no installed counterpart to compare with."""
    from_packages = {
        name: entry for name, entry in recorded.items() if _is_package(entry.get("source"))
    }
    if not from_packages:
        return []
    installed = installed_tools()
    lines: list[str] = []
    for name, entry in sorted(from_packages.items()):
        was = f"{entry.get('version')} (from {entry.get('source')})"
        found = installed.get(name)
        if found is None or found.tool is None:
            why = "is not installed now" if found is None else f"cannot load now: {found.error}"
            lines.append(f"tool {name!r}: the run offered version {was}; it {why}")
            continue
        tool = found.tool
        if tool.version != entry.get("version"):
            lines.append(
                f"tool {name!r}: the run offered version {was}; version {tool.version}"
                f" (from {tool.source}) is installed now"
            )
        elif tool.schema_digest() != entry.get("schema_digest"):
            lines.append(
                f"tool {name!r}: version {tool.version} is installed as the run had it, but"
                f" its schema changed (digest {entry.get('schema_digest')} recorded,"
                f" {tool.schema_digest()} now)"
            )
    return lines


def _is_package(source: str | None) -> bool:
    """Whether a recorded source is an installed package ("name 1.2.3"), not an MCP server."""
    return source is not None and not source.startswith("mcp ")


def check_pin(tool: Tool, pin: str) -> None:
    """A `ConfigError` naming both versions when `tool`'s version is not in `pin`."""
    if not pin.strip() or pin.strip() == "*":
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        accepted = SpecifierSet(f"=={pin.strip()}" if _is_version(pin) else pin)
    except InvalidSpecifier:
        raise ConfigError(
            f'[tools] {tool.name} = "{pin}" is not a version pin (e.g. ">=1.2,<2")'
        ) from None
    try:
        version = Version(tool.version)
    except InvalidVersion:
        raise ConfigError(
            f"tool {tool.name!r} has version {tool.version!r}, not a version"
        ) from None
    if not accepted.contains(version, prereleases=True):
        where = f" (from {tool.source})" if tool.source else ""
        raise ConfigError(
            f"tool {tool.name!r} is installed at version {tool.version}{where}, but [tools]"
            f' pins {tool.name} = "{pin}"; install a matching version or change the pin'
        )


def _is_version(text: str) -> bool:
    """A bare version (`"1.3.0"`) pins that version."""
    from packaging.version import InvalidVersion, Version

    try:
        Version(text.strip())
    except InvalidVersion:
        return False
    return True


def needs_refusal(tool: Tool, settings: ToolSettings) -> str | None:
    """Why `tool` cannot be offered with these grants (global and its own), or None."""
    own = settings.granted.get(tool.name, ToolGrant())
    grants = settings.grants
    missing: list[str] = []
    if tool.needs.network and not (grants.network or own.network):
        missing.append("network")
    roots = [Path(p).expanduser().resolve() for p in [*grants.paths, *own.paths]]
    for path in tool.needs.paths:
        wanted = Path(path).expanduser().resolve()
        if not any(wanted == root or root in wanted.parents for root in roots):
            missing.append(f"path {path}")
    allowed = {*grants.secrets, *own.secrets}
    missing += [f"secret {name}" for name in tool.needs.secrets if name not in allowed]
    if not missing:
        return None
    return (
        f"it needs {', '.join(missing)}, not granted (grant it in rlm.toml: [tools.grants]"
        f" for every tool, or [tools.{tool.name}] for this one)"
    )


async def open_toolbox(settings: ToolSettings, given: Sequence[Tool] = ()) -> ToolBox | None:
    """The tools of a run, or None when it has none (no tool given, granted or served).

    The MCP servers of `[tools.mcp.*]` are started here and their tools listed; the
    box's `aclose` stops them."""
    if not given and not settings.granted and not settings.mcp:
        return None
    candidates: list[Tool] = list(given)
    given_names = {t.name for t in given}
    wanted = [name for name in settings.granted if name not in given_names]
    if wanted:
        installed = installed_tools()
        for name in wanted:
            entry = installed.get(name)
            if entry is None:
                known = ", ".join(sorted(installed)) or "none"
                raise ConfigError(
                    f"tool {name!r} is granted in [tools] but no installed package provides"
                    f" it (installed tools: {known})"
                )
            if entry.tool is None:
                raise ConfigError(f"tool {name!r} ({entry.package}) cannot load: {entry.error}")
            candidates.append(entry.tool)
    for tool in candidates:
        grant = settings.granted.get(tool.name)
        if grant is not None:
            check_pin(tool, grant.version)
    if settings.mcp:
        from rlmrt.tools._mcp import open_servers

        candidates += await open_servers(settings.mcp)
    offered: list[Tool] = []
    refused: dict[str, str] = {}
    for tool in candidates:
        reason = needs_refusal(tool, settings)
        if reason is None:
            offered.append(tool)
        else:
            refused[tool.name] = reason
    secrets = {t.name: t.needs.secrets for t in offered if t.needs.secrets}
    return ToolBox(offered, settings, refused=refused, secrets=secrets)
