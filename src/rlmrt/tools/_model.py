"""What a tool is, whatever provides it (a Python function, an MCP server).

A `Tool` has a name (how code calls it: `tools.NAME(...)`), a one-line description, a
semver version, declared needs (`ToolNeeds`) and a JSON schema of its arguments. The host
binds what code passed to the schema (`arguments`), raising a `TypeError` or `ValueError`
that names the argument, then runs it (`run`). Code never sees a host traceback: what a
tool raises reaches it as one line (see `rlmrt.tools._box`).
"""

from __future__ import annotations

import hashlib
import json
import keyword
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RESERVED_NAMES",
    "Secrets",
    "Tool",
    "ToolNeeds",
    "name_problem",
    "signature_text",
    "type_text",
]

#: names a tool cannot have: the `tools` namespace's own attributes
RESERVED_NAMES = frozenset({"batch"})

_JSON_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "None",
}


@dataclass(frozen=True, slots=True)
class ToolNeeds:
    """What a tool needs beyond its arguments; each must be granted in settings
    (`[tools.grants]` or the tool's own `[tools.NAME]` table) or it is not offered.

    `paths` are the files or folders it reads or writes; `secrets` the names of
    environment variables it reads on the host (they reach it as `Secrets`)."""

    network: bool = False
    paths: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = ["network"] if self.network else []
        parts += [f"path {p}" for p in self.paths]
        parts += [f"secret {s}" for s in self.secrets]
        return ", ".join(parts) or "nothing"


class Secrets(Mapping[str, str]):
    """The granted secrets a tool declared, by name: what a parameter annotated
    `Secrets` receives on the host (it is not an argument code passes)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({', '.join(self._values)})"  # names, never values


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a tool's name (code calls it as `tools.NAME`), or None."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"tool name {name!r} is not a Python identifier"
    if name.startswith("_"):
        return f"tool name {name!r} starts with an underscore"
    if name in RESERVED_NAMES:
        return f"tool name {name!r} is reserved (tools.{name} is the namespace's own)"
    return None


class Tool(ABC):
    """A function code may call on the host as `tools.NAME(...)`."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        version: str,
        needs: ToolNeeds,
        input_schema: dict[str, Any],
        source: str | None = None,
    ) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        self.name = name
        self.description = description
        self.version = version
        self.needs = needs
        self.input_schema = input_schema
        #: where it comes from: "package 1.2.3", "mcp server NAME", None (given directly)
        self.source = source

    @abstractmethod
    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, checked against the schema; a `TypeError` or
        `ValueError` naming the argument when they do not fit."""

    @abstractmethod
    async def run(self, arguments: dict[str, Any], secrets: Secrets) -> Any:
        """Run the tool with checked `arguments`; returns its result."""

    async def aclose(self) -> None:
        """Release what the tool holds (an MCP server's connection: see its source)."""

    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().split("\n", 1)[0].strip()

    #: the Python type of its result, as text ("int"), when known
    returns: str | None = None

    def signature(self) -> str:
        """`NAME(a: int, b: str = 'x') -> int`, from the schema."""
        returns = f" -> {self.returns}" if self.returns else ""
        return f"{self.name}({signature_text(self.input_schema)}){returns}"

    def schema_digest(self) -> str:
        """A short digest of what code sees of the tool (its argument schema and result
        type): a run records it, and a replay warns when the installed tool's differs."""
        text = json.dumps([self.input_schema, self.returns], sort_keys=True, default=repr)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version}>"


def signature_text(schema: Mapping[str, Any]) -> str:
    """The Python parameter list of a JSON object schema: required ones first."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    parts: list[str] = []
    optional: list[str] = []
    for name, prop in properties.items():
        text = f"{name}: {type_text(prop)}"
        if name in required:
            parts.append(text)
        else:
            default = prop.get("default") if isinstance(prop, Mapping) else None
            optional.append(f"{text} = {default!r}")
    return ", ".join(parts + optional)


def type_text(prop: Any) -> str:
    """The Python type of a JSON schema, as text ("list[int]")."""
    if not isinstance(prop, Mapping):
        return "Any"
    kind = prop.get("type")
    if isinstance(kind, str):
        text = _JSON_TYPES.get(kind, "Any")
        if kind == "array" and isinstance(prop.get("items"), Mapping):
            text = f"list[{type_text(prop['items'])}]"
        return text
    if isinstance(kind, list):
        return " | ".join(_JSON_TYPES.get(str(k), "Any") for k in kind)
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list) and options:
        return " | ".join(type_text(option) for option in options)
    if "enum" in prop and isinstance(prop["enum"], list):
        return "Literal[" + ", ".join(repr(v) for v in prop["enum"]) + "]"
    return "Any"
