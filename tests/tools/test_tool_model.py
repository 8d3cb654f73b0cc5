"""The tool model: schemas from type hints and docstrings, argument errors naming the
argument, names code can call, results bounded and made JSON data."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from rlmrt.config import ToolSettings
from rlmrt.errors import ToolError
from rlmrt.tools import FunctionTool, Secrets, ToolBox, tool


class Point(BaseModel):
    x: int
    y: int = 0


@tool(version="2.0.1", network=True, paths=["/data"], secrets=["TOKEN"])
async def locate(
    where: Point,
    radius: Annotated[float, Field(gt=0)] = 1.0,
    tags: list[str] | None = None,
    secrets: Secrets | None = None,
) -> dict[str, object]:
    """Find things near a point.

    Longer text that is not the summary.

    Args:
        where: the centre,
            on two lines
        radius: how far to look
    """
    return {"x": where.x, "radius": radius, "tags": tags}


def test_schema_signature_and_needs_come_from_the_function() -> None:
    assert locate.name == "locate" and locate.version == "2.0.1"
    assert locate.summary() == "Find things near a point."
    assert locate.needs.describe() == "network, path /data, secret TOKEN"
    props = locate.input_schema["properties"]
    assert set(props) == {"where", "radius", "tags"}  # the Secrets parameter is not one
    assert props["where"]["description"] == "the centre, on two lines"
    assert props["radius"] == {
        "default": 1.0,
        "description": "how far to look",
        "exclusiveMinimum": 0,
        "type": "number",
    }
    assert locate.input_schema["required"] == ["where"]
    assert locate.signature() == (
        "locate(where: Any, radius: float = 1.0, tags: list[str] | None = None)"
        " -> dict[str, object]"
    )


async def test_arguments_are_checked_and_errors_name_the_argument() -> None:
    box = ToolBox([locate], ToolSettings())
    assert await box.invoke(locate, [{"x": 3}], {"tags": ["a"]}) == {
        "x": 3,
        "radius": 1.0,
        "tags": ["a"],
    }
    with pytest.raises(ValueError, match=r"tools.locate\(\) argument 'radius': Input should be"):
        await box.invoke(locate, [{"x": 3}], {"radius": -1})
    with pytest.raises(TypeError, match=r"argument 'where.x': Field required"):
        await box.invoke(locate, [{"y": 3}], {})
    with pytest.raises(TypeError, match=r"argument 'tags.1': Input should be a valid string"):
        await box.invoke(locate, [{"x": 1}], {"tags": ["a", 2]})
    with pytest.raises(TypeError, match=r"tools.locate\(\): got an unexpected keyword argument"):
        await box.invoke(locate, [{"x": 1}], {"secrets": {}})  # code cannot pass secrets


def test_names_code_cannot_call_are_refused() -> None:
    def f() -> None:
        pass

    for bad in ("batch", "_hidden", "class", "two words"):
        with pytest.raises(ValueError, match="tool name"):
            FunctionTool(f, name=bad)
    with pytest.raises(ToolError, match="two tools are named 'f'"):
        ToolBox([FunctionTool(f), FunctionTool(f)], ToolSettings())


async def test_a_result_that_is_not_json_data_is_a_tool_error() -> None:
    @tool
    def opaque() -> object:
        """Return something odd."""
        return object()

    with pytest.raises(ToolError, match=r"tools.opaque\(\) returned a object, which is not JSON"):
        await ToolBox([opaque], ToolSettings()).invoke(opaque, [], {})


def test_secrets_never_show_their_values() -> None:
    assert repr(Secrets({"TOKEN": "abc"})) == "Secrets(TOKEN)"


async def test_a_tools_own_type_error_is_its_failure_not_a_bad_call() -> None:
    @tool
    def buggy(n: int) -> int:
        """Has a bug."""
        return n + "1"  # type: ignore[operator, no-any-return]

    with pytest.raises(ToolError, match=r"tools.buggy\(\) failed: TypeError: unsupported"):
        await ToolBox([buggy], ToolSettings()).invoke(buggy, [1], {})
