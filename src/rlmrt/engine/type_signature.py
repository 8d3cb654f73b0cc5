"""An answer type written as Python for the model: the classes of its objects as
TypedDicts, then the answer's own annotation.

A code model reads ``class Invoice(TypedDict): id: str ...`` at a glance, where a JSON
Schema takes it a paragraph; the schema still follows in the prompt for what Python
cannot say (patterns, bounds). Made from the JSON Schema, so Pydantic models,
dataclasses, TypedDicts and schema dicts all read the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_MAX_DEPTH = 8
_COMMENT_CHARS = 80


def python_signature(schema: dict[str, Any], name: str = "answer") -> str:
    """`schema` as Python: a TypedDict class per object shape (dependencies first), then
    ``answer: <type>``."""
    classes: dict[str, str] = {}
    annotation = _Writer(schema, classes).type_of(schema, 0)
    return "\n\n".join([*classes.values(), f"{name}: {annotation}"])


class _Writer:
    def __init__(self, root: dict[str, Any], classes: dict[str, str]) -> None:
        self._root = root
        self._classes = classes

    def type_of(self, node: dict[str, Any], depth: int) -> str:
        if depth > _MAX_DEPTH:
            return "Any"
        if "$ref" in node:
            target = self._resolve(node["$ref"])
            if target is None:
                return "Any"
            title = target.get("title") or node["$ref"].rsplit("/", 1)[-1]
            return self.type_of({**target, "title": title}, depth + 1)
        if "enum" in node:
            return f"Literal[{', '.join(json.dumps(v) for v in node['enum'])}]"
        if "const" in node:
            return f"Literal[{json.dumps(node['const'])}]"
        for combinator in ("anyOf", "oneOf"):
            options = node.get(combinator)
            if isinstance(options, list) and options:
                return " | ".join(
                    dict.fromkeys(
                        self.type_of(o, depth + 1) for o in options if isinstance(o, dict)
                    )
                )
        kind = node.get("type")
        if isinstance(kind, list):
            return " | ".join(self.type_of({**node, "type": k}, depth + 1) for k in kind)
        if kind == "array":
            items = node.get("items")
            inner = self.type_of(items, depth + 1) if isinstance(items, dict) else "Any"
            return f"list[{inner}]"
        if kind == "object" or "properties" in node:
            properties = node.get("properties")
            if not isinstance(properties, dict) or not properties:
                extra = node.get("additionalProperties")
                value = self.type_of(extra, depth + 1) if isinstance(extra, dict) else "Any"
                return f"dict[str, {value}]"
            return self._class(node, properties, depth)
        return _SCALARS.get(str(kind), "Any")

    def _class(self, node: dict[str, Any], properties: dict[str, Any], depth: int) -> str:
        required = set(node.get("required", []))
        body = []
        for field, sub in properties.items():
            sub = sub if isinstance(sub, dict) else {}
            annotation = self.type_of(sub, depth + 1)
            if field not in required:
                annotation = f"NotRequired[{annotation}]"
            body.append(f"    {field}: {annotation}{_comment(sub)}")
        title = _class_name(str(node.get("title") or "Object"))
        name, number = title, 1
        while name in self._classes and self._classes[name].split("\n", 1)[1] != "\n".join(body):
            number += 1  # two shapes with one title
            name = f"{title}{number}"
        self._classes.setdefault(name, "\n".join([f"class {name}(TypedDict):", *body]))
        return name

    def _resolve(self, ref: str) -> dict[str, Any] | None:
        if not ref.startswith("#/"):
            return None
        node: Any = self._root
        for part in ref[2:].split("/"):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, dict) else None


def _class_name(title: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    name = "".join(word[:1].upper() + word[1:] for word in words) or "Object"
    return name if not name[0].isdigit() else f"T{name}"


def _comment(node: dict[str, Any]) -> str:
    """What Python's annotation leaves out: the field's description and constraints."""
    notes = []
    description = node.get("description")
    if isinstance(description, str) and description.strip():
        notes.append(" ".join(description.split()))
    for key in ("pattern", "format", "minimum", "maximum", "minLength", "maxLength"):
        if key in node:
            notes.append(f"{key} {node[key]}")
    if not notes:
        return ""
    text = "; ".join(notes)
    if len(text) > _COMMENT_CHARS:
        text = text[: _COMMENT_CHARS - 3] + "..."
    return f"  # {text}"
