"""`rlm metrics serve` follows the trajectory files other processes write: only files
made after it started, only complete lines, each run's handler closed at its end."""

from __future__ import annotations

from pathlib import Path

from rlmrt.events import Event, RunFinished, RunStarted, SubCallStarted
from rlmrt.observe.follow import TrajectoryFollower
from rlmrt.observe.trajectory import event_json


class Recorded:
    def __init__(self, project: str, seen: dict[str, list[Event]]) -> None:
        self.events: list[Event] = []
        self.closed = False
        seen.setdefault(project, [])
        self._seen = seen
        self._project = project

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._seen[self._project].append(event)

    def close(self) -> None:
        self.closed = True


def _ids(call: str, parent: str | None) -> dict[str, object]:
    return {"run_id": "r", "call_id": call, "parent_call_id": parent, "depth": int(bool(parent))}


def _line(event: Event) -> bytes:
    return (event_json(event) + "\n").encode()


START = RunStarted(
    **_ids("r", None),
    prompt="q",
    model="m",
    sandbox="local",
    context_metadata={},
    max_depth=1,
)
SUB = SubCallStarted(**_ids("s", "r"), sub_kind="llm_query", prompt="p", model=None)
SUB_END = RunFinished(
    **_ids("s", "r"), answer="a", partial=False, stop_reason="final", iterations=1, usage={}
)
END = RunFinished(
    **_ids("r", None), answer="a", partial=False, stop_reason="final", iterations=1, usage={}
)


def test_new_files_are_followed_line_by_line_until_their_run_ends(tmp_path: Path) -> None:
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    alpha.mkdir()
    (alpha / "old.jsonl").write_bytes(_line(START))  # there before: never read
    seen: dict[str, list[Event]] = {}
    handlers: list[Recorded] = []

    def watch(project: str) -> Recorded:
        handlers.append(Recorded(project, seen))
        return handlers[-1]

    follower = TrajectoryFollower({"a": alpha, "b": beta}, watch)  # beta does not exist yet
    assert follower.poll() == 0 and handlers == []

    run = alpha / "new.jsonl"
    half = _line(SUB)[:10]
    run.write_bytes(_line(START) + half)  # a line still being written waits
    assert follower.poll() == 1
    assert [type(e) for e in seen["a"]] == [RunStarted]

    with run.open("ab") as file:
        file.write(_line(SUB)[10:] + _line(SUB_END))
    assert follower.poll() == 2  # the sub-run's end does not end the run
    assert not handlers[0].closed

    beta.mkdir()
    (beta / "other.jsonl").write_bytes(_line(START) + b"not json\n")
    with run.open("ab") as file:
        file.write(_line(END))
    assert follower.poll() == 2  # alpha's end, beta's start; the bad line skipped
    assert handlers[0].closed and handlers[0].events[-1] == END
    assert [type(e) for e in seen["b"]] == [RunStarted]

    with run.open("ab") as file:
        file.write(_line(SUB))
    assert follower.poll() == 0  # a finished run is not read again
    run.unlink()
    assert follower.poll() == 0

    follower.close()
    assert all(handler.closed for handler in handlers)
