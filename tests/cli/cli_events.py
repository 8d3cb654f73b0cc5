"""A scripted event sequence shaped like a real run: root → sub-calls → child run,
a code error, a failed model call, a best-effort answer."""

from __future__ import annotations

from rlmrt.events import (
    Answer,
    BudgetWarning,
    CodeExecuted,
    Event,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    RunErrored,
    RunFinished,
    RunStarted,
    SubCallFinished,
    SubCallStarted,
    TokenDelta,
)

RUN = "20250101-000000-abcd"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self, step: float = 0.5) -> float:
        self.now += step
        return self.now


def ids(call_id: str, parent: str | None, depth: int) -> dict:
    return {"run_id": RUN, "call_id": call_id, "parent_call_id": parent, "depth": depth}


def model(call_id: str, parent: str, depth: int, purpose: str, tick: Clock, tokens=(100, 10)):
    return [
        ModelCallStarted(
            **ids(call_id, parent, depth), ts=tick(), model="m", purpose=purpose, message_count=2
        ),
        ModelCallFinished(
            **ids(call_id, parent, depth),
            ts=tick(),
            model="m",
            purpose=purpose,
            response=f"reply of {call_id}",
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost_usd=0.001,
            duration_s=0.5,
        ),
    ]


def run_events(*, finish: bool = True) -> list[Event]:
    tick = Clock()
    events: list[Event] = [
        RunStarted(
            **ids(RUN, None, 0),
            ts=tick(),
            prompt="Count the [bold]words[/]",
            model="m",
            sandbox="local",
            context_metadata={"type": "str", "total_length": 1234},
        ),
        *model("c1", RUN, 0, "root", tick),
        SubCallStarted(
            **ids("c2", RUN, 0), ts=tick(), sub_kind="llm", prompt="sum part 1", model=None
        ),
        *model("c3", "c2", 1, "sub", tick, tokens=(50, 5)),
        SubCallFinished(
            **ids("c2", RUN, 0),
            ts=tick(),
            sub_kind="llm",
            ok=True,
            response="part one",
            error=None,
            duration_s=1.0,
        ),
        SubCallStarted(
            **ids("c4", RUN, 0), ts=tick(), sub_kind="rlm", prompt="dig deeper", model=None
        ),
        RunStarted(
            **ids("c5", "c4", 1),
            ts=tick(),
            prompt="dig deeper",
            model="m",
            sandbox="local",
            context_metadata={"type": "str", "total_length": 10},
        ),
        *model("c6", "c5", 1, "root", tick, tokens=(30, 3)),
        CodeExecuted(
            **ids("c7", "c5", 1),
            ts=tick(),
            iteration=1,
            code="FINAL('deep')",
            stdout="",
            stderr="",
            error=None,
            duration_s=0.01,
        ),
        Answer(**ids("c5", "c4", 1), ts=tick(), answer="deep", partial=False, source="code"),
        RunFinished(
            **ids("c5", "c4", 1),
            ts=tick(),
            answer="deep",
            partial=False,
            stop_reason="final",
            iterations=1,
            usage={},
        ),
        SubCallFinished(
            **ids("c4", RUN, 0),
            ts=tick(),
            sub_kind="rlm",
            ok=True,
            response="deep",
            error=None,
            duration_s=3.0,
        ),
        CodeExecuted(
            **ids("c8", RUN, 0),
            ts=tick(),
            iteration=1,
            code="a = llm_query('sum part 1')\nb = rlm_query('dig deeper')\nprint(a, b)",
            stdout="part one deep\n",
            stderr="",
            error=None,
            duration_s=4.0,
        ),
        BudgetWarning(
            **ids(RUN, None, 0), ts=tick(), limit="max_cost_usd", message="80% of max_cost_usd used"
        ),
        *model("c9", RUN, 0, "root", tick),
        CodeExecuted(
            **ids("c10", RUN, 0),
            ts=tick(),
            iteration=2,
            code="1/0",
            stdout="",
            stderr="",
            error="Traceback...\nZeroDivisionError: division by zero",
            duration_s=0.01,
        ),
        TokenDelta(**ids("c11", RUN, 0), ts=tick(), text="FIN"),
        ModelCallStarted(
            **ids("c11", RUN, 0), ts=tick(), model="m", purpose="root", message_count=6
        ),
        ModelCallFailed(
            **ids("c11", RUN, 0),
            ts=tick(),
            model="m",
            purpose="root",
            error_type="ModelConnectionError",
            message="server went away",
            duration_s=2.0,
        ),
    ]
    if finish:
        events += [
            *model("c12", RUN, 0, "final", tick),
            RunErrored(
                **ids(RUN, None, 0),
                ts=tick(),
                error_type="ModelConnectionError",
                message="server went away",
            ),
            Answer(
                **ids(RUN, None, 0),
                ts=tick(),
                answer="42 words",
                partial=True,
                source="best_effort",
            ),
            RunFinished(
                **ids(RUN, None, 0),
                ts=tick(),
                answer="42 words",
                partial=True,
                stop_reason="max_iterations",
                iterations=3,
                usage={},
            ),
        ]
    return events
