"""Typed answers: `completion(..., output_type=...)` tells the model the type, checks its
FINAL value on the host, sends misfits back with their errors, and gives `result.output`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from scripting import repl
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from rlmrt import RunResult
from rlmrt.errors import ConfigError
from rlmrt.events import Answer, Event, OutputRejected, RunStarted, event_from_dict
from rlmrt.observe.describe import describe
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import scripted


class Invoice(BaseModel):
    id: str
    amount: float
    status: Literal["PAID", "OVERDUE"]


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Totals(TypedDict):
    customer: str
    total: float


def _run(serve, make_rlm, root, output_type, **kwargs: Any) -> tuple[RunResult, list[Event], Any]:
    server = serve(scripted(root=root))
    rlm = make_rlm(server, max_iterations=kwargs.pop("max_iterations", 6))
    events: list[Event] = []
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c", output_type=output_type, **kwargs)
    return result, events, server


@pytest.mark.parametrize(
    ("output_type", "code", "expected"),
    [
        (int, "FINAL(6 * 7)", 42),
        (int, "FINAL('42')", 42),  # lax: a number given as text
        (str, "FINAL('42')", "42"),  # a str answer that looks like a number stays text
        (list[str], "FINAL(['a', 'b'])", ["a", "b"]),
        (
            list[Invoice],
            "FINAL([{'id': 'INV-1', 'amount': 3.5, 'status': 'PAID'}])",
            [Invoice(id="INV-1", amount=3.5, status="PAID")],
        ),
        (Point, "p = {'x': 1, 'y': 2}\nFINAL_VAR('p')", Point(1, 2)),
        (Totals, "FINAL({'customer': 'Acme', 'total': 10})", {"customer": "Acme", "total": 10}),
        (
            {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "tags": {"type": "array"}},
                "required": ["n"],
            },
            "FINAL({'n': 3})",
            {"n": 3},
        ),
    ],
)
def test_a_fitting_final_value_is_the_typed_output(
    serve, make_rlm, output_type, code, expected
) -> None:
    result, events, _ = _run(serve, make_rlm, [repl(code)], output_type)
    assert (result.output, result.partial, result.stop_reason) == (expected, False, "final")
    assert not [e for e in events if isinstance(e, OutputRejected)]


def test_the_first_prompt_gives_the_type_its_schema_and_an_example(serve, make_rlm) -> None:
    _, _, server = _run(serve, make_rlm, [repl("FINAL([])")], list[Invoice])
    first = server.requests[0].last_user_text
    assert "The answer must be a value of type `list[Invoice]`" in first
    assert (
        "```python\nclass Invoice(TypedDict):\n    id: str\n    amount: float\n"
        '    status: Literal["PAID", "OVERDUE"]\n\nanswer: list[Invoice]\n```'
    ) in first
    assert '"enum": ["PAID", "OVERDUE"]' in first
    assert 'FINAL([{"id": "...", "amount": 0.0, "status": "PAID"}])' in first
    assert first.index("Question: q") < first.index("The answer must be")
    assert "rlm_query take output_type= too" in first  # typed runs hear of typed sub-calls


def test_without_an_output_type_the_prompt_says_nothing_of_types(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("FINAL('x')")]))
    result = make_rlm(server).completion("q", context="c")
    assert result.output is None
    assert "The answer must be" not in server.requests[0].last_user_text
    assert "output_type" not in json.dumps(server.requests[0].body["messages"])


def test_a_misfit_goes_back_naming_each_field_then_the_fix_is_the_output(serve, make_rlm) -> None:
    bad = "FINAL([{'id': 'INV-1', 'amount': 'lots', 'status': 'LATE'}])"
    good = "FINAL([{'id': 'INV-1', 'amount': 7, 'status': 'OVERDUE'}])"
    result, events, server = _run(serve, make_rlm, [repl(bad), repl(good)], list[Invoice])
    assert result.output == [Invoice(id="INV-1", amount=7, status="OVERDUE")]
    assert (result.partial, result.stop_reason) == (False, "final")
    note = server.requests[1].last_user_text
    assert "does not have the answer's type" in note
    assert "0.amount: Input should be a valid number" in note
    assert "0.status: Input should be 'PAID' or 'OVERDUE' (got 'LATE')" in note
    rejected = [e for e in events if isinstance(e, OutputRejected)]
    assert [(e.attempt, e.retries) for e in rejected] == [(1, 2)]
    assert describe(rejected[0]).startswith(
        "answer does not fit the output type (misfit 1 of 3): 0.amount: Input should be"
    )
    # a rejected value is never announced as the answer
    assert [e.answer for e in events if isinstance(e, Answer)] == [
        json.dumps([{"id": "INV-1", "amount": 7, "status": "OVERDUE"}])
    ]


def test_past_its_retries_the_run_ends_partial_with_the_last_value(serve, make_rlm) -> None:
    attempts = [repl(f"FINAL('not a number {n}')") for n in range(5)]
    result, events, server = _run(serve, make_rlm, attempts, int, output_retries=1)
    assert (result.answer, result.output) == ("not a number 1", None)
    assert (result.partial, result.stop_reason) == (True, "invalid_output")
    assert len(server.requests) == 2
    rejected = [e for e in events if isinstance(e, OutputRejected)]
    assert [e.attempt for e in rejected] == [1, 2]
    assert [(e.answer, e.partial) for e in events if isinstance(e, Answer)] == [
        ("not a number 1", True)
    ]


def test_a_best_effort_answer_is_typed_when_it_fits(serve, make_rlm) -> None:
    root = [repl("x = 5"), "FINAL_VAR(x)"]
    result, _, _ = _run(serve, make_rlm, root, int, max_iterations=1)
    assert (result.output, result.partial, result.stop_reason) == (5, True, "max_iterations")


def test_a_best_effort_misfit_keeps_the_text_and_no_output(serve, make_rlm) -> None:
    root = [repl("x = 5"), "FINAL(five)"]
    result, events, _ = _run(serve, make_rlm, root, int, max_iterations=1)
    assert (result.answer, result.output, result.partial) == ("five", None, True)
    assert [e.answer for e in events if isinstance(e, OutputRejected)] == ["five"]


def test_the_trajectory_keeps_the_schema_and_every_rejection(serve, make_rlm) -> None:
    root = [repl("FINAL('x')"), repl("FINAL(1)")]
    result, _, _ = _run(serve, make_rlm, root, int)
    assert result.trajectory_path is not None
    events = read_events(result.trajectory_path)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.output_schema == {"type": "integer"}
    rejected = [e for e in events if isinstance(e, OutputRejected)]
    assert len(rejected) == 1
    assert rejected[0].errors == [
        "the value: Input should be a valid integer, unable to parse string as an integer (got 'x')"
    ]
    assert event_from_dict(rejected[0].to_dict()) == rejected[0]


@pytest.mark.parametrize(
    ("output_type", "retries", "message"),
    [
        (object(), 2, "is not a type Pydantic can check"),
        ({"title": "no type"}, 2, "must be a JSON Schema with a 'type'"),
        (int, -1, "output_retries must be an int >= 0"),
    ],
)
def test_a_bad_output_type_is_a_clear_error(serve, make_rlm, output_type, retries, message) -> None:
    server = serve(scripted(root=[repl("FINAL(1)")]))
    with pytest.raises(ConfigError, match=message):
        make_rlm(server).completion(
            "q", context="c", output_type=output_type, output_retries=retries
        )
    assert server.requests == []


def test_a_session_turn_takes_an_output_type_too(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("x = 3"), repl("FINAL(x)"), repl("FINAL([x, x])")]))
    with make_rlm(server).session(context="c") as session:
        first = session.completion("q1", output_type=int)
        second = session.completion("q2", output_type=list[int])
    assert (first.output, second.output) == (3, [3, 3])
    assert "The answer must be a value of type `list[int]`" in server.requests[2].last_user_text
