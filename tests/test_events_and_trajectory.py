from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmrt.errors import ConfigError, UsageError
from rlmrt.events import (
    EVENT_SCHEMA_VERSION,
    EVENT_TYPES,
    CodeExecuted,
    EventBus,
    ModelCallFinished,
    RunFinished,
    RunStarted,
    SubCallStarted,
    event_from_dict,
)
from rlmrt.observe.trajectory import (
    KEPT_BYTES,
    SKIM_LINE_BYTES,
    TrajectoryWriter,
    event_json,
    find_run,
    iter_events,
    list_runs,
    read_events,
)
from rlmrt.observe.usage import UsageLedger


def _ids(call_id: str, parent: str | None, depth: int = 0) -> dict[str, object]:
    return {"run_id": "run", "call_id": call_id, "parent_call_id": parent, "depth": depth}


def _model(call_id: str, parent: str, tokens: int) -> ModelCallFinished:
    return ModelCallFinished(
        **_ids(call_id, parent),
        model="m",
        purpose="root",
        response="r",
        input_tokens=tokens,
        output_tokens=1,
        cost_usd=0.5,
        duration_s=0.1,
    )


def _run(call_id: str, parent: str | None) -> RunStarted:
    return RunStarted(
        **_ids(call_id, parent), prompt="p", model="m", sandbox="local", context_metadata={}
    )


def test_every_event_round_trips_and_is_versioned() -> None:
    event = _model("c1", "r", 3)
    data = event.to_dict()
    assert data["kind"] == "model_call_finished" and data["v"] == EVENT_SCHEMA_VERSION
    assert event_from_dict(json.loads(json.dumps(data))) == event
    assert len(EVENT_TYPES) == 23
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_dict({"kind": "nope"})


def test_bus_delivers_in_order_and_unsubscribes() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.call_id))
    bus.emit(_run("r", None))
    unsubscribe()
    unsubscribe()
    bus.emit(_run("r2", None))
    assert seen == ["r"]


def test_ledger_counts_a_child_in_its_parents() -> None:
    ledger = UsageLedger()
    for event in (
        _run("r", None),
        _model("c1", "r", 10),
        SubCallStarted(**_ids("s1", "r"), sub_kind="rlm", prompt="p", model=None),
        _run("k", "s1"),
        _model("c2", "k", 5),
        SubCallStarted(**_ids("s2", "k"), sub_kind="llm", prompt="p", model=None),
        _model("c3", "s2", 1),
    ):
        ledger(event)
    assert ledger.total().input_tokens == 16
    assert ledger.total().model_calls == 3
    assert ledger.usage("k").input_tokens == 6
    assert ledger.usage("k").cost_usd == 1.0
    assert ledger.usage("unknown").model_calls == 0
    ledger(
        RunFinished(
            **_ids("k", "s1"),
            answer="a",
            partial=False,
            stop_reason="final",
            iterations=1,
            usage={},
        )
    )
    assert ledger.usage("k").wall_time_s >= 0
    assert UsageLedger().total().model_calls == 0


def test_a_killed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "20260101-000000-abcd.jsonl"
    writer = TrajectoryWriter(path)
    writer(_run("r", None))
    writer(_model("c1", "r", 2))
    writer.close()
    writer(_model("c2", "r", 2))  # after close: ignored
    with path.open("a") as handle:
        handle.write('{"kind": "model_call_fin')  # cut off mid-line
        handle.write("\n\n[1]\n")
        handle.write(json.dumps({"kind": "future_event", "v": 9}) + "\n")
    events = read_events(path)
    assert [e.call_id for e in events] == ["r", "c1"]


def test_listing_and_finding_runs(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "none") == []
    for name in (
        "20260101-000000-aaaa1111",
        "20260102-000000-bbbb2222",
        "20260102-000000-bbbb3333",
    ):
        (tmp_path / f"{name}.jsonl").write_text("")
    runs = list_runs(tmp_path)
    assert runs[0].run_id == "20260102-000000-bbbb3333"
    assert find_run(tmp_path, "20260101-000000-aaaa1111").run_id.endswith("aaaa1111")
    assert find_run(tmp_path, "aaaa1111").run_id.endswith("aaaa1111")
    with pytest.raises(UsageError, match="no run 'zzz'"):
        find_run(tmp_path, "zzz")
    with pytest.raises(UsageError, match="ambiguous"):
        find_run(tmp_path, "20260102")
    with pytest.raises(UsageError, match="cannot read trajectory"):
        read_events(tmp_path / "missing.jsonl")


def test_unwritable_trajectory_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write trajectories"):
        TrajectoryWriter(blocker / "runs" / "x.jsonl")


def test_skimming_a_huge_line_keeps_each_string_short_and_the_rest_whole(tmp_path: Path) -> None:
    """`rlm logs` reads a line over SKIM_LINE_BYTES with its strings cut to KEPT_BYTES (a
    note says how much was not read); escapes and multi-byte characters are never split,
    the lines around it are read whole, and a huge line that is not JSON is dropped."""
    path = tmp_path / "run.jsonl"
    stdout = "é" * 5 + 'x\\"y\n' * 200_000 + "€" * (SKIM_LINE_BYTES // 3)
    huge = CodeExecuted(
        **_ids("run", None),
        iteration=1,
        code="print(1)",
        stdout=stdout,
        stderr="",
        error=None,
        duration_s=0.5,
    )
    first = SubCallStarted(**_ids("s", "run", 1), sub_kind="llm_query", prompt="p", model=None)
    last = RunFinished(
        **_ids("run", None),
        answer="done",
        partial=False,
        stop_reason="final",
        iterations=1,
        usage={},
    )
    lines = [
        event_json(first),
        event_json(huge),
        "{" + "9" * (2 * SKIM_LINE_BYTES),
        event_json(last),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(event_json(huge).encode()) > 2 * SKIM_LINE_BYTES

    whole = list(iter_events(path))
    assert [type(e) for e in whole] == [SubCallStarted, CodeExecuted, RunFinished]
    assert whole[1] == huge

    skimmed = list(iter_events(path, skim=True))
    assert [type(e) for e in skimmed] == [SubCallStarted, CodeExecuted, RunFinished]
    assert skimmed[0] == first and skimmed[2] == last
    cut = skimmed[1]
    assert isinstance(cut, CodeExecuted) and cut.code == "print(1)" and cut.duration_s == 0.5
    kept, _, note = cut.stdout.partition(" [... ")
    assert stdout.startswith(kept) and len(kept.encode()) <= KEPT_BYTES
    not_read = (
        len(json.dumps(stdout, ensure_ascii=False).encode())
        - 2
        - len(json.dumps(kept, ensure_ascii=False).encode())
        + 2
    )
    assert note == f"{not_read:,} bytes not read]"
