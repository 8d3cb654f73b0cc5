"""Issue 19, typed sub-calls: `llm_query(..., output_type=...)` asks the model for JSON
of the type's schema (OpenAI's `response_format`) and gives code the checked value;
`rlm_query(..., output_type=...)` gives the child's typed answer; a misfit is an error
in the REPL naming the field. The type crosses the kernel channel as its JSON Schema.
And media given as an `rlm_query` context reach the host as data, not as their repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripting import repl
from test_rich_inputs import media_folder

from rlmrt.testing import ChatRequest, scripted

KINDS = ["local", "process"]

PERSON = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _sub_requests(server) -> list[ChatRequest]:
    return [r for r in server.requests if not r.is_rlm_root]


@pytest.mark.parametrize("kind", KINDS)
def test_llm_query_asks_for_the_schema_and_gives_the_typed_value(
    serve, make_rlm, kind: str
) -> None:
    code = (
        f"person = llm_query('Who is it?', output_type={PERSON!r})\n"
        "FINAL(f\"{isinstance(person, dict)} {person['name']} {person['age'] + 1}\")"
    )
    server = serve(scripted(root=[repl(code)], sub='{"name": "Ada", "age": 36}'))
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert result.answer == "True Ada 37"
    [sub] = _sub_requests(server)
    assert sub.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": PERSON},
    }
    [root] = [r for r in server.requests if r.is_rlm_root]
    assert "response_format" not in root.body  # only typed sub-calls ask for it


@pytest.mark.parametrize("kind", KINDS)
def test_a_python_type_in_code_crosses_as_its_schema(serve, make_rlm, kind: str) -> None:
    code = (
        "from typing import Literal, TypedDict\n"
        "class Row(TypedDict):\n"
        "    id: int\n"
        "    status: Literal['PAID', 'OVERDUE']\n"
        "rows = llm_query('Rows?', output_type=list[Row])\n"
        "n = llm_query('How many?', output_type=int)\n"
        "FINAL(json.dumps([rows, n]))"
    )
    replies = iter(['[{"id": 1, "status": "PAID"}, {"id": "2", "status": "OVERDUE"}]', "2"])
    server = serve(scripted(root=[repl("import json\n" + code)], sub=lambda r: next(replies)))
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert json.loads(result.answer or "") == [
        [{"id": 1, "status": "PAID"}, {"id": 2, "status": "OVERDUE"}],  # "2" checked to 2
        2,
    ]
    rows, count = (r.body["response_format"]["json_schema"] for r in _sub_requests(server))
    assert rows["schema"] == {
        "type": "array",
        "items": {
            "title": "Row",
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "status": {"enum": ["PAID", "OVERDUE"]},
            },
            "required": ["id", "status"],
        },
    }
    assert count == {"name": "JSON", "schema": {"type": "integer"}}


@pytest.mark.parametrize("kind", KINDS)
def test_a_misfit_reply_is_an_error_naming_the_field(serve, make_rlm, kind: str) -> None:
    code = (
        "try:\n"
        f"    llm_query('Who?', output_type={PERSON!r})\n"
        "except ValueError as exc:\n"
        "    FINAL(f'ValueError: {exc}')"
    )
    server = serve(scripted(root=[repl(code)], sub='{"name": "Ada", "age": "old"}'))
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert result.answer is not None
    assert result.answer.startswith(
        "ValueError: llm_query() reply does not fit output_type Person: age: "
    )
    assert "'old'" in result.answer


@pytest.mark.parametrize("kind", KINDS)
def test_the_batched_form_types_each_reply_and_fails_items_alone(
    serve, make_rlm, kind: str
) -> None:
    code = (
        "out = llm_query_batched(['a', 'b'], output_type=list[int])\n"
        "FINAL(repr([x if not isinstance(x, Exception) else 'failed' for x in out]))"
    )
    server = serve(
        scripted(root=[repl(code)], sub=lambda r: "[1, 2]" if r.last_user_text == "a" else "[x")
    )
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert result.answer == "[[1, 2], 'failed']"
    for sub in _sub_requests(server):
        assert sub.body["response_format"]["json_schema"]["schema"] == {
            "type": "array",
            "items": {"type": "integer"},
        }


@pytest.mark.parametrize("kind", KINDS)
def test_rlm_query_returns_the_childs_typed_value(serve, make_rlm, kind: str) -> None:
    parent = repl(
        f"person = rlm_query('Find the person', context='Ada, 36', output_type={PERSON!r})\n"
        "FINAL(str(person['age'] * 2) + ' ' + str(isinstance(person, dict)))"
    )
    child_misfit = repl("FINAL({'name': 'Ada', 'age': 'thirty-six'})")
    child_fixed = repl("FINAL({'name': 'Ada', 'age': 36})")
    server = serve(scripted(root=[parent, child_misfit, child_fixed]))
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert result.answer == "72 True"
    roots = [r for r in server.requests if r.is_rlm_root]
    child_first = "\n".join(str(m["content"]) for m in roots[1].messages)
    assert "The answer must be a value of type `Person`" in child_first
    retry = roots[2].last_user_text
    assert "age" in retry  # the child's retry named the field


def test_a_bad_output_type_in_code_is_a_clear_error(serve, make_rlm) -> None:
    code = (
        "errors = []\n"
        "for spec in (object, {1: 'x'}, dict[int, str]):\n"
        "    try:\n"
        "        llm_query('x', output_type=spec)\n"
        "    except TypeError as exc:\n"
        "        errors.append(str(exc)[:60])\n"
        "FINAL('\\n'.join(errors))"
    )
    server = serve(scripted(root=[repl(code)], sub="never asked"))
    result = make_rlm(server, sandbox="process").completion("q", "c")
    lines = (result.answer or "").splitlines()
    assert len(lines) == 3
    assert all(line.startswith("llm_query() output_type") for line in lines)
    assert not _sub_requests(server)


@pytest.mark.parametrize("kind", KINDS)
def test_media_as_an_rlm_query_context_reach_the_child_as_data(
    serve, make_rlm, tmp_path: Path, kind: str
) -> None:
    folder = media_folder(tmp_path)
    parent = repl("FINAL(rlm_query('What is in the image?', context=context['a.png']))")
    child = repl("FINAL(f'{context!r} {context.format} {context.width}x{context.height}')")
    server = serve(scripted(root=[parent, child]))
    result = make_rlm(server, sandbox=kind).completion("q", folder)
    assert result.answer is not None and result.answer.startswith("<Image png")
    assert result.answer.endswith(" png 40x30")
    child_first = "\n".join(str(m["content"]) for m in server.requests[1].messages)
    assert "<Image" not in child_first  # described by its metadata, not a repr string


@pytest.mark.parametrize("kind", KINDS)
def test_a_dataclass_crosses_as_its_schema_and_comes_back_as_instances(
    serve, make_rlm, kind: str
) -> None:
    code = (
        "from dataclasses import dataclass\n"
        "from typing import Optional\n"
        "@dataclass\n"
        "class Person:\n"
        "    name: str\n"
        "    age: Optional[int] = None\n"
        "p = llm_query('Who?', output_type=Person)\n"
        "team = llm_query('Who else?', output_type=dict[str, list[Person]])\n"
        "FINAL(repr([p, team]))"
    )
    replies = iter(['{"name": "Ada"}', '{"a": [{"name": "Bo", "age": 3}]}'])
    server = serve(scripted(root=[repl(code)], sub=lambda r: next(replies)))
    result = make_rlm(server, sandbox=kind).completion("q", "c")
    assert result.answer == (  # instances, the default filled
        "[Person(name='Ada', age=None), {'a': [Person(name='Bo', age=3)]}]"
    )
    sub, _ = _sub_requests(server)
    assert sub.body["response_format"]["json_schema"] == {
        "name": "Person",
        "schema": {
            "title": "Person",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            },
            "required": ["name"],
        },
    }


def test_rlm_query_at_max_depth_is_a_typed_llm_query(serve, make_rlm) -> None:
    code = (
        f"person = rlm_query('Find the person', context='Ada, 36', output_type={PERSON!r})\n"
        "FINAL(str(person['age']))"
    )
    server = serve(scripted(root=[repl(code)], sub='{"name": "Ada", "age": 36}'))
    result = make_rlm(server, sandbox="process", max_depth=0).completion("q", "c")
    assert result.answer == "36"
    [sub] = _sub_requests(server)
    assert sub.body["response_format"]["json_schema"]["schema"] == PERSON
    assert "Ada, 36" in str(sub.messages[-1]["content"])  # the context went with the prompt
