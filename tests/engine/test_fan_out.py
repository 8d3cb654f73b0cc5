"""Batched child runs share the tree's `max_concurrent_runs` slots: the rest queue."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from scripting import question, repl, turn

from rlmrt.events import Event, RunStarted, RunWaited
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import ChatRequest


def _kernels_below(pid: int) -> int:
    """Sandbox kernel processes (not their bubblewrap wrappers) descending from `pid`."""
    parents: dict[int, int] = {}
    kernels: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
        if any(arg.endswith(b"kernel.pyc") for arg in argv) and b"bwrap" not in argv[0]:
            kernels.append(int(entry.name))
    count = 0
    for kernel in kernels:
        node = kernel
        while node in parents and node not in (0, 1, pid):
            node = parents[node]
        count += node == pid
    return count


class _Census:
    """The most sandbox kernels alive at once below this process, sampled every 10 ms."""

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.most = max(self.most, _kernels_below(os.getpid()))

    def __enter__(self) -> _Census:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_batch_of_twenty_children_runs_two_at_a_time(serve, make_rlm) -> None:
    def handler(request: ChatRequest) -> str:
        asked = question(request)
        if asked == "top":
            if turn(request) == 0:
                return repl(
                    "parts = rlm_query_batched(\n"
                    "    [f'part {i}' for i in range(20)], [str(i) for i in range(20)]\n"
                    ")\n"
                    "print(parts)"
                )
            return repl("FINAL(','.join(parts))")
        # each child keeps its sandbox busy long enough for the others to pile up
        return repl("import time\ntime.sleep(0.2)\nFINAL(context)")

    server = serve(handler)
    events: list[Event] = []
    rlm = make_rlm(server, sandbox="process", sandbox_pool=0, max_concurrent_runs=2)
    rlm.subscribe(events.append)
    with _Census() as census:
        result = rlm.completion("top", context="ctx")

    assert result.answer == ",".join(str(i) for i in range(20))
    assert sum(1 for e in events if isinstance(e, RunStarted) and e.depth == 1) == 20
    # the root's sandbox and at most two children's
    assert 2 <= census.most <= 3, census.most
    waits = [e for e in events if isinstance(e, RunWaited)]
    assert len(waits) >= 18  # all but the first two children queued
    assert all(e.depth == 1 and e.limit == 2 and e.waited_s > 0 for e in waits)
    assert result.trajectory_path is not None
    saved = [e for e in read_events(result.trajectory_path) if isinstance(e, RunWaited)]
    assert saved == waits


def test_a_run_waiting_on_its_children_lends_them_its_slot(serve, make_rlm) -> None:
    """Depth two with one slot: the child waits on its grandchild without a deadlock."""

    def handler(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return "leaf"
        asked = question(request)
        if asked == "top":
            return repl("FINAL('+'.join(rlm_query_batched(['mid 1', 'mid 2'], ['a', 'b'])))")
        if asked.startswith("mid"):
            return repl("FINAL(rlm_query('low ' + context, context=context) + context)")
        return repl("FINAL(context.upper())")

    server = serve(handler)
    rlm = make_rlm(server, max_depth=2, max_concurrent_runs=1)
    result = rlm.completion("top", context="ctx")
    assert result.answer == "Aa+Bb"
