"""Replaying runs made in a session: the earlier completions rebuild the REPL state first."""

from __future__ import annotations

import json

import pytest
from session_recording import FIRST, SECOND, handler, record_session

from rlmrt.config import load_config
from rlmrt.engine.replay import Recording, replay_run, rerun_on_model
from rlmrt.errors import UsageError
from rlmrt.events import CodeExecuted, RunStarted
from rlmrt.observe.trajectory import read_events


@pytest.fixture
def recorded(serve, make_rlm):
    server = serve(handler)
    session = record_session(server, make_rlm)
    server.stop()  # the replays must not need it
    assert session.answers == ["40 words, echo:tag for alpha", "three", "oneone"]
    return session


def test_the_last_run_of_a_session_replays_identically(recorded) -> None:
    report = replay_run(recorded.paths[2], FIRST, session_contexts=[SECOND])
    assert report.identical, report.differences
    assert report.session_runs == recorded.run_ids[:2]
    assert report.replayed_answer == report.recorded_answer == "oneone"
    # 2 + 2 executions of the earlier runs, 2 of the run itself and 1 of its child
    assert report.executions == 7
    # the code saw the recorded run ids in `history`, as it did when recorded
    [first_exec] = [
        e
        for e in read_events(recorded.paths[2])
        if isinstance(e, CodeExecuted) and e.depth == 0 and e.iteration == 1
    ]
    assert first_exec.stdout == (f"{[r[-8:] for r in recorded.run_ids[:2]]} echo:tag for alpha 3\n")


def test_a_middle_run_needs_only_what_came_before_it(recorded) -> None:
    report = replay_run(recorded.paths[1], FIRST, session_contexts=[SECOND])
    assert report.identical, report.differences
    assert report.session_runs == recorded.run_ids[:1]
    assert report.replayed_answer == "three"
    first = replay_run(recorded.paths[0], FIRST)  # the first run adds no context
    assert first.identical and first.session_runs == []


def test_the_trajectory_records_the_place_in_the_session(recorded) -> None:
    places = [Recording.read(p).session for p in recorded.paths]
    assert all(p is not None for p in places)
    assert len({p["id"] for p in places}) == 1
    assert [p["index"] for p in places] == [0, 1, 2]
    assert [p["previous_runs"] for p in places] == [[], recorded.run_ids[:1], recorded.run_ids[:2]]
    assert [p["added_context"] for p in places] == [None, "context_1", None]
    assert list(places[2]["contexts"]) == ["context", "context_1"]
    # child runs are not part of the session (they have their own sandbox)
    children = [
        e for e in read_events(recorded.paths[2]) if isinstance(e, RunStarted) and e.depth == 1
    ]
    assert len(children) == 1 and children[0].session is None


def test_a_tampered_earlier_run_is_reported_under_its_run_id(recorded) -> None:
    path = recorded.paths[1]
    lines = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        if data["kind"] == "code_executed" and data["iteration"] == 1:
            assert data["stdout"] == "43 40 words, echo:tag for alpha\n"
            data["stdout"] = "44 tampered\n"
        lines.append(json.dumps(data))
    path.write_text("\n".join(lines) + "\n")
    report = replay_run(recorded.paths[2], FIRST, session_contexts=[SECOND])
    assert not report.identical
    [diff] = report.differences
    assert diff.run_id == recorded.run_ids[1]
    assert (diff.field, diff.recorded, diff.index) == ("stdout", "44 tampered\n", 1)
    assert diff.replayed == "43 40 words, echo:tag for alpha\n"


def test_a_missing_earlier_trajectory_is_named(recorded) -> None:
    recorded.paths[0].unlink()
    with pytest.raises(UsageError) as caught:
        replay_run(recorded.paths[2], FIRST, session_contexts=[SECOND])
    message = str(caught.value)
    assert f"run {recorded.run_ids[2]} is completion 3 of a session" in message
    assert f"completion 1, run {recorded.run_ids[0]}, whose trajectory is missing" in message


def test_session_contexts_are_checked(recorded) -> None:
    with pytest.raises(UsageError, match=r"also had `context_1` \(str of 13 characters\)"):
        replay_run(recorded.paths[2], FIRST)
    with pytest.raises(UsageError, match=r"`context_1` does not match .* given str of 2 char"):
        replay_run(recorded.paths[2], FIRST, session_contexts=["no"])
    with pytest.raises(UsageError, match="2 session context"):
        replay_run(recorded.paths[2], FIRST, session_contexts=[SECOND, "extra"])
    with pytest.raises(UsageError, match="the context does not match"):
        replay_run(recorded.paths[2], "other", session_contexts=[SECOND])


def test_a_run_of_another_session_is_refused(recorded, serve, make_rlm) -> None:
    other = record_session(serve(handler), make_rlm)
    # make the last run of the first session point at a run of the second one
    path = recorded.paths[2]
    text = path.read_text().replace(recorded.run_ids[0], other.run_ids[0])
    path.write_text(text)
    with pytest.raises(UsageError, match="is not a run of the session of"):
        replay_run(path, FIRST, session_contexts=[SECOND])


def test_rerun_on_another_model_rebuilds_the_state_from_the_recording(recorded, serve) -> None:
    other = serve(handler)
    config = load_config(api_base=other.url, api_key="sk-test", max_retries=0, max_depth=1)
    result = rerun_on_model(
        recorded.paths[2], FIRST, model="openai/other", config=config, session_contexts=[SECOND]
    )
    assert result.answer == "oneone"
    assert result.run_id not in recorded.run_ids  # a new run, saved as its own
    assert result.trajectory_path is not None and result.trajectory_path.is_file()
    # only the run itself went to the other model; the earlier ones came from the recording
    roots = [
        r for r in other.requests if r.is_rlm_root and "depth 1" not in r.messages[1]["content"]
    ]
    assert {r.model for r in other.requests} == {"other"}
    assert len(roots) == 2
    assert "Question: what do we know?" in roots[0].messages[1]["content"]
    assert "2 earlier exchange(s)" in roots[0].messages[1]["content"]
