"""Tools written as typed Python functions: `@tool` and `FunctionTool`.

The schema comes from the function's type hints (through a Pydantic model of its
parameters) and the descriptions from its docstring: the first paragraph describes the
tool, an ``Args:`` section (Google style) each parameter. A parameter annotated
`Secrets` is not an argument: the host passes the granted secrets there.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, get_args, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from rlmrt.tools._model import Secrets, Tool, ToolNeeds

__all__ = ["FunctionTool", "tool"]

_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?)\s*:\s*$")
_TYPE_ERRORS = ("missing", "extra_forbidden", "unexpected_keyword_argument")


class FunctionTool(Tool):
    """A Python function (sync or async) as a tool; `tool(...)` makes one."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str = "0.1.0",
        needs: ToolNeeds | None = None,
        source: str | None = None,
    ) -> None:
        self.function = function
        summary, arg_docs = _parse_docstring(inspect.getdoc(function) or "")
        hints = get_type_hints(function, include_extras=True)
        signature = inspect.signature(function)
        self._secrets_param: str | None = None
        fields: dict[str, Any] = {}
        kept: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ValueError(f"tool {function.__name__}: *args and **kwargs have no schema")
            annotation = hints.get(param.name, Any)
            if annotation is Secrets or Secrets in get_args(annotation):
                self._secrets_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            # the description joins what the annotation holds (Annotated[int, Field(ge=0)])
            described = Annotated[annotation, Field(description=arg_docs.get(param.name))]  # type: ignore[valid-type]
            fields[param.name] = (described, default)
            kept.append(param.replace(annotation=inspect.Parameter.empty))
        self._bind = signature.replace(parameters=kept, return_annotation=signature.empty)
        tool_name = name or function.__name__
        self._model: type[BaseModel] = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        schema = self._model.model_json_schema()
        schema.pop("title", None)
        for prop in (schema.get("properties") or {}).values():
            prop.pop("title", None)
        self._is_async = inspect.iscoroutinefunction(function)
        if "return" in hints:
            self.returns = _type_name(hints["return"])
        super().__init__(
            name=tool_name,
            description=description or summary or tool_name,
            version=version,
            needs=needs or ToolNeeds(),
            input_schema=schema,
            source=source,
        )

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        try:
            bound = self._bind.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"tools.{self.name}(): {exc}") from None
        try:
            checked = self._model.model_validate(dict(bound.arguments))
        except ValidationError as exc:
            raise validation_error(self.name, exc) from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}

    async def run(self, arguments: dict[str, Any], secrets: Secrets) -> Any:
        if self._secrets_param is not None:
            arguments = {**arguments, self._secrets_param: secrets}
        if self._is_async:
            return await self.function(**arguments)
        return await asyncio.to_thread(self.function, **arguments)


def validation_error(tool: str, exc: ValidationError) -> TypeError | ValueError:
    """The first problem of `exc` as one line naming the argument: a `TypeError` for a
    missing, unknown or mistyped argument, a `ValueError` for a value out of bounds."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    got = f" (got {error['input']!r:.60})" if error["type"] != "missing" else ""
    message = f"tools.{tool}() argument {where!r}: {error['msg']}{got}"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    kind = error["type"]
    if kind in _TYPE_ERRORS or kind.endswith(("_type", "_parsing")):
        return TypeError(message)
    return ValueError(message)


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the first paragraph, {parameter: its description from the Args: section})."""
    summary = doc.split("\n\n", 1)[0].strip()
    if _SECTION.match(summary.split("\n", 1)[0]):
        summary = ""
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section, current = heading.group(1), None
            continue
        if section not in ("Args", "Arguments", "Parameters"):
            continue
        match = _ARG_LINE.match(line)
        if match and line.startswith("    ") and not line.startswith("        "):
            current = match.group(1).lstrip("*")
            args[current] = match.group(2).strip()
        elif current is not None and line.strip():
            args[current] = f"{args[current]} {line.strip()}".strip()
    return summary, args


@overload
def tool(function: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str = "0.1.0",
    network: bool = False,
    paths: Sequence[str] = (),
    secrets: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str = "0.1.0",
    network: bool = False,
    paths: Sequence[str] = (),
    secrets: Sequence[str] = (),
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a typed function a tool: ``@tool`` or ``@tool(version="1.2.0", network=True)``.

    `network`, `paths` and `secrets` declare what it needs; settings must grant each
    before the tool is offered to a run.
    """
    needs = ToolNeeds(network=network, paths=tuple(paths), secrets=tuple(secrets))

    def make(func: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(func, name=name, description=description, version=version, needs=needs)

    return make(function) if function is not None else make
