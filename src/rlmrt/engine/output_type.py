"""Typed answers: what `completion(..., output_type=...)` asks for, told to the model and
checked on the host.

The model answers with `FINAL(value)` as always; the sandbox renders the value as text
(JSON for dicts, lists, numbers, booleans and None; strings as they are), so the host
reads that text back and validates it with Pydantic. A value that does not fit goes back
to the model as a note naming each field and its problem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

from pydantic import PydanticUserError, TypeAdapter, ValidationError

from rlmrt.engine.type_signature import python_signature
from rlmrt.errors import ConfigError

MAX_ERRORS_SHOWN = 8


class OutputInvalid(Exception):
    """The answer does not fit the output type; `errors` name each field and problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class OutputType:
    """One requested answer type: its validator, JSON Schema and description."""

    adapter: TypeAdapter[Any]
    schema: dict[str, Any]
    name: str

    @classmethod
    def of(cls, spec: object) -> OutputType:
        """From a Pydantic model, dataclass, TypedDict, plain or generic type, or a JSON
        Schema dict (validated as JSON against that schema's shape)."""
        if isinstance(spec, dict):
            return _from_json_schema(spec)
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(cast(Any, spec))
            schema = adapter.json_schema()
        except (PydanticUserError, TypeError) as exc:
            raise ConfigError(
                f"output_type {spec!r} is not a type Pydantic can check: {exc}"
            ) from exc
        return cls(adapter=adapter, schema=schema, name=_type_name(spec))

    def validate(self, answer: str) -> Any:
        """The typed value of a FINAL answer's text, or OutputInvalid."""
        failures: list[ValidationError] = []
        for candidate in _candidates(answer):
            try:
                return self.adapter.validate_python(candidate)
            except ValidationError as exc:
                failures.append(exc)
        raise OutputInvalid(_messages(failures[0]))

    def data_of(self, answer: str, *, source: str) -> Any:
        """The typed value of a sub-call's `answer` as JSON data (what sandboxed code is
        given), or a ValueError naming `source`, the type and each misfit field."""
        try:
            value = self.validate(answer)
        except OutputInvalid as exc:
            raise ValueError(
                f"{source} does not fit output_type {self.name}: {'; '.join(exc.errors)}"
            ) from None
        return self.adapter.dump_python(value, mode="json")

    def instructions(self) -> str:
        """What the first prompt tells the model about the answer's type."""
        example = json.dumps(example_value(self.schema, self.schema), ensure_ascii=False)
        return (
            f"The answer must be a value of type `{self.name}`; in Python:\n"
            f"```python\n{python_signature(self.schema)}\n```\n"
            f"Its JSON Schema: {json.dumps(self.schema, ensure_ascii=False)}\n"
            "Build it in code as Python dicts, lists, strings and numbers and give it with "
            f"FINAL(value) or FINAL_VAR('name'), for example: FINAL({example})\n"
            f"{SUB_CALL_TYPES_NOTE}"
        )


#: told only to typed runs: sub-calls can be typed too (their replies come back checked)
SUB_CALL_TYPES_NOTE = (
    "llm_query, llm_query_batched and rlm_query take output_type= too (a JSON Schema "
    "dict, or a type such as int or list[str]): the reply then comes back as that value, "
    "already checked, e.g. llm_query(f'List the ids in:\\n{chunk}', output_type=list[str])"
)


def _candidates(answer: str) -> list[Any]:
    """The answer as JSON when it parses, then as the text itself (a str answer that
    happens to look like a number stays text)."""
    try:
        return [json.loads(answer), answer]
    except ValueError:
        return [answer]


def _messages(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False)[:MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in error["loc"]) or "the value"
        lines.append(f"{where}: {error['msg']} (got {_brief(error.get('input'))})")
    hidden = exc.error_count() - MAX_ERRORS_SHOWN
    if hidden > 0:
        lines.append(f"... and {hidden} more error(s)")
    return lines


def _brief(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(spec: object) -> str:
    """`list[Invoice]`, not `list[app.models.Invoice]`."""
    name = getattr(spec, "__name__", None)
    text = repr(spec) if name is None or getattr(spec, "__args__", None) else name
    return re.sub(r"\b(?:\w+\.)+(?=\w)", "", text)


def _from_json_schema(schema: dict[str, Any]) -> OutputType:
    """A JSON Schema dict, checked as the Python type it describes (objects, arrays,
    scalars, enums, unions, local $refs)."""
    if "type" not in schema and "properties" not in schema and "$ref" not in schema:
        raise ConfigError("output_type as a dict must be a JSON Schema with a 'type'")
    adapter: TypeAdapter[Any] = TypeAdapter(_schema_python_type(schema, schema))
    return OutputType(adapter=adapter, schema=schema, name=schema.get("title", "JSON"))


_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}


def _schema_python_type(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """The Python type a JSON Schema node describes (objects become TypedDicts with
    their required keys), so one validator reports field errors for both spellings."""
    from typing import Literal, Union

    from typing_extensions import NotRequired, TypedDict

    if "$ref" in node:
        return _schema_python_type(_resolve(node["$ref"], root), root)
    if "enum" in node:
        return Literal[tuple(node["enum"])]
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            options = tuple(_schema_python_type(option, root) for option in node[combinator])
            return Union[options]  # noqa: UP007 - built from a runtime tuple
    kind = node.get("type")
    if isinstance(kind, list):
        return Union[tuple(_schema_python_type({**node, "type": k}, root) for k in kind)]  # noqa: UP007
    if kind == "array":
        items = node.get("items")
        of = _schema_python_type(items, root) if isinstance(items, dict) else Any
        return cast(Any, list)[of]
    if kind == "object" or "properties" in node:
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        fields = {}
        for name, sub in properties.items():
            python = _schema_python_type(sub, root)
            fields[name] = python if name in required else NotRequired[python]
        if not properties:
            return dict[str, Any]
        return TypedDict(node.get("title", "Object"), fields)  # type: ignore[operator]
    if kind in _SCALARS:
        return _SCALARS[kind]
    return Any


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ConfigError(f"output_type schema: only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"output_type schema: $ref {ref!r} names no schema")
    return node


def example_value(node: dict[str, Any], root: dict[str, Any], depth: int = 0) -> Any:
    """A small value of the schema's shape, for the prompt's example."""
    if depth > 6:
        return None
    if "$ref" in node:
        return example_value(_resolve(node["$ref"], root), root, depth + 1)
    if node.get("enum"):
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = node.get(combinator)
        if options:
            usable = [o for o in options if o.get("type") != "null"] or options
            return example_value(usable[0], root, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "array":
        items = node.get("items")
        return [example_value(items, root, depth + 1)] if isinstance(items, dict) else []
    if kind == "object" or "properties" in node:
        return {
            name: example_value(sub, root, depth + 1)
            for name, sub in node.get("properties", {}).items()
        }
    return {"string": "...", "integer": 0, "number": 0.0, "boolean": False}.get(str(kind))
