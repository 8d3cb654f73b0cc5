"""What every driver shares: RSS measurement and the conversation with overhead.py.

Stdlib only: it runs in each runtime's own venv. A driver calls `drive(setup)` where
`setup(spec)` imports its runtime, builds it, and returns `run(context) -> answer`.

Sequence (one driver process = one measured run):
  read the context files -> setup (import + build) -> RSS "after import" ->
  warm-up run on a small context (first-call lazy imports, connection pools) ->
  print a "ready" line, wait for "go" on stdin (overhead.py resets the server's stats
  in between) -> reset the peak RSS -> the measured run -> print the "result" line.

Protocol lines on stdout start with MARK, so runtimes that print logs do not disturb it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARK = "@@BENCH "
_STATUS = Path("/proc/self/status")


def status_kb(field: str) -> int:
    """A `VmRSS`/`VmHWM`-style field of /proc/self/status, in kB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not found in {_STATUS}")
    return int(match.group(1))


class PeakRSS:
    """Peak RSS over a stretch of code: VmHWM after resetting it, else 5 ms sampling."""

    def __init__(self) -> None:
        self.method = "VmHWM"
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.method = "sampled-5ms"
            self._peak = status_kb("VmRSS")
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, status_kb("VmRSS"))

    def stop(self) -> int:
        if self._thread is None:
            return status_kb("VmHWM")
        self._stop.set()
        self._thread.join()
        return max(self._peak, status_kb("VmRSS"))


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(MARK + json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def drive(setup: Callable[[dict[str, Any]], Callable[[str], str]]) -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    try:
        context = Path(spec["context_path"]).read_text()
        warmup = Path(spec["warmup_path"]).read_text() if spec.get("warmup_path") else None
        started = time.perf_counter()
        run = setup(spec)
        setup_s = time.perf_counter() - started
        rss_after_import = status_kb("VmRSS")
        warmup_s = None
        if warmup is not None:
            started = time.perf_counter()
            run(warmup)
            warmup_s = time.perf_counter() - started
        del warmup
        emit("ready")
        if sys.stdin.readline().strip() != "go":
            raise RuntimeError("overhead.py did not say go")
        rss_before = status_kb("VmRSS")
        peak = PeakRSS()
        peak.start()
        started = time.perf_counter()
        answer = run(context)
        wall_s = time.perf_counter() - started
        peak_kb = peak.stop()
        emit(
            "result",
            wall_s=wall_s,
            answer=str(answer)[:500],
            setup_s=setup_s,
            warmup_s=warmup_s,
            rss_after_import_kb=rss_after_import,
            rss_before_run_kb=rss_before,
            peak_rss_kb=peak_kb,
            rss_after_run_kb=status_kb("VmRSS"),
            peak_method=peak.method,
        )
    except BaseException:
        emit("error", error=traceback.format_exc()[-4000:])
        raise SystemExit(1) from None
