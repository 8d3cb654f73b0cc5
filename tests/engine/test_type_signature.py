"""Answer types written as Python for the model's first prompt."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from rlmrt.engine.output_type import OutputType
from rlmrt.engine.type_signature import python_signature


def signature(spec: object) -> str:
    return python_signature(OutputType.of(spec).schema)


class Owner(TypedDict):
    team: str
    email: str


class Server(TypedDict):
    host: str
    port: int
    owner: Owner


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Person(BaseModel):
    name: str = Field(description="full name", pattern=r"^[A-Z]")
    level: Literal["junior", "senior"]
    age: int | None = None


def test_nested_objects_are_classes_written_before_their_use() -> None:
    assert signature(Server) == (
        "class Owner(TypedDict):\n    team: str\n    email: str\n\n"
        "class Server(TypedDict):\n    host: str\n    port: int\n    owner: Owner\n\n"
        "answer: Server"
    )


def test_optional_fields_enums_and_constraints_are_written_out() -> None:
    assert signature(list[Person]) == (
        "class Person(TypedDict):\n"
        "    name: str  # full name; pattern ^[A-Z]\n"
        '    level: Literal["junior", "senior"]\n'
        "    age: NotRequired[int | None]\n\n"
        "answer: list[Person]"
    )
    assert signature(Point) == (
        "class Point(TypedDict):\n    x: float\n    y: NotRequired[float]\n\nanswer: Point"
    )


def test_plain_types_are_one_annotation() -> None:
    assert signature(int) == "answer: int"
    assert signature(list[str]) == "answer: list[str]"
    assert signature(dict[str, int]) == "answer: dict[str, int]"
    assert signature(float | None) == "answer: float | None"


def test_a_json_schema_dict_reads_the_same_way() -> None:
    schema = {
        "type": "object",
        "title": "order line",
        "properties": {
            "sku": {"type": "string"},
            "qty": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "ref": {"$ref": "#/$defs/Ref"},
        },
        "required": ["sku", "qty", "ref"],
        "$defs": {"Ref": {"type": "object", "properties": {"id": {"type": "string"}}}},
    }
    assert python_signature(schema) == (
        "class Ref(TypedDict):\n    id: NotRequired[str]\n\n"
        "class OrderLine(TypedDict):\n    sku: str\n    qty: int  # minimum 1\n"
        "    tags: NotRequired[list[str]]\n    ref: Ref\n\n"
        "answer: OrderLine"
    )


def test_two_shapes_with_one_title_get_two_names() -> None:
    schema = {
        "type": "array",
        "items": {
            "anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        },
    }
    assert python_signature(schema) == (
        "class Object(TypedDict):\n    a: str\n\n"
        "class Object2(TypedDict):\n    b: int\n\n"
        "answer: list[Object | Object2]"
    )
