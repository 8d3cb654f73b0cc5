"""Alert rules (`[[observe.alerts]]`) evaluated on the event stream.

One `AlertEvaluator` per process and set of rules keeps the windows (model calls and
limit hits of the last minutes, per project) across runs; each run tree gets a
`TreeAlerts` handler that feeds it and tracks the tree's own spending for budget
rules. Alerts go to `rlmrt.observe.alert_sender`, which delivers them off the run's
thread: evaluating a rule never waits on the network.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlmrt.events import CodeExecuted, Event, ModelCallFailed, ModelCallFinished
from rlmrt.observe.execution import limit_hit

if TYPE_CHECKING:
    from rlmrt.config import AlertRule, RLMConfig

DEFAULT_NAMES = {
    "budget": "RlmBudgetThreshold",
    "error_rate": "RlmModelErrorRate",
    "model_latency_p95": "RlmModelLatencyP95",
    "limit_hits": "RlmSandboxLimitHits",
}


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    kind: str
    severity: str
    project: str
    summary: str
    value: float
    threshold: float
    ts: float
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "project": self.project,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "ts": self.ts,
            "run_id": self.run_id,
        }


@dataclass(slots=True)
class _Window:
    calls: deque[tuple[float, float, bool]] = field(default_factory=deque)  # ts, s, failed
    limit_hits: deque[float] = field(default_factory=deque)

    def trim(self, now: float, seconds: float) -> tuple[list[tuple[float, float, bool]], int]:
        calls = [c for c in self.calls if c[0] >= now - seconds]
        hits = sum(1 for ts in self.limit_hits if ts >= now - seconds)
        return calls, hits

    def forget_before(self, oldest: float) -> None:
        while self.calls and self.calls[0][0] < oldest:
            self.calls.popleft()
        while self.limit_hits and self.limit_hits[0] < oldest:
            self.limit_hits.popleft()


class AlertEvaluator:
    """Evaluates `rules`; `deliver(alert)` sends one (it must not block)."""

    def __init__(
        self,
        rules: list[AlertRule],
        deliver: Callable[[Alert], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self._deliver = deliver
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._last_fired: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()
        self._longest = max((r.window_s for r in rules), default=0.0)

    def watch(self, config: RLMConfig, spent_today_usd: float) -> TreeAlerts:
        return TreeAlerts(self, config, spent_today_usd)

    def _window(self, project: str) -> _Window:
        return self._windows.setdefault(project, _Window())

    def record_call(self, project: str, run_id: str, seconds: float, *, failed: bool) -> None:
        now = self._clock()
        with self._lock:
            window = self._window(project)
            window.calls.append((now, seconds, failed))
            window.forget_before(now - self._longest)
            calls, _ = window.trim(now, self._longest)
        for index, rule in enumerate(self.rules):
            if rule.kind not in ("error_rate", "model_latency_p95"):
                continue
            recent = [c for c in calls if c[0] >= now - rule.window_s]
            if len(recent) < rule.min_events:
                continue
            if rule.kind == "error_rate":
                value = sum(1 for c in recent if c[2]) / len(recent)
                summary = f"{value:.0%} of model calls failed in the last {rule.window_s:g} s"
            else:
                value = _p95([c[1] for c in recent])
                summary = f"p95 model call latency {value:.2f} s over the last {rule.window_s:g} s"
            self._check(index, rule, project, run_id, value, summary)

    def record_limit_hit(self, project: str, run_id: str, limit: str) -> None:
        now = self._clock()
        with self._lock:
            window = self._window(project)
            window.limit_hits.append(now)
            window.forget_before(now - self._longest)
        for index, rule in enumerate(self.rules):
            if rule.kind != "limit_hits":
                continue
            _, hits = window.trim(now, rule.window_s)
            summary = f"{hits} executions hit a sandbox limit ({limit}) in {rule.window_s:g} s"
            self._check(index, rule, project, run_id, float(hits), summary)

    def record_spending(
        self, project: str, run_id: str, share: float, summary: Callable[[], str]
    ) -> None:
        for index, rule in enumerate(self.rules):
            if rule.kind == "budget":
                self._check(index, rule, project, run_id, share, summary())

    def _check(
        self, index: int, rule: AlertRule, project: str, run_id: str, value: float, summary: str
    ) -> None:
        if value < rule.threshold:
            return
        now = self._clock()
        with self._lock:
            last = self._last_fired.get((index, project))
            if last is not None and now - last < rule.repeat_s:
                return
            self._last_fired[(index, project)] = now
        self._deliver(
            Alert(
                name=rule.name or DEFAULT_NAMES[rule.kind],
                kind=rule.kind,
                severity=rule.severity,
                project=project,
                summary=summary,
                value=value,
                threshold=rule.threshold,
                ts=now,
                run_id=run_id,
            )
        )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class TreeAlerts:
    """The event handler of one run tree: feeds the evaluator, and tracks the tree's
    spending against `[budget] daily_usd` and `max_cost_usd`."""

    def __init__(self, evaluator: AlertEvaluator, config: RLMConfig, spent_today: float) -> None:
        self._e = evaluator
        self._project = config.observe.project or ""
        self._daily = config.budget.daily_usd
        self._tree_limit = config.budget.max_cost_usd
        self._spent_before = spent_today
        self._cost = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ModelCallFinished):
            self._e.record_call(self._project, event.run_id, event.duration_s, failed=False)
            self._cost += event.cost_usd
            self._spending(event.run_id)
        elif isinstance(event, ModelCallFailed):
            self._e.record_call(self._project, event.run_id, event.duration_s, failed=True)
        elif isinstance(event, CodeExecuted):
            limit = limit_hit(event.error)
            if limit is not None:
                self._e.record_limit_hit(self._project, event.run_id, limit)

    def _spending(self, run_id: str) -> None:
        shares = []
        if self._daily:
            shares.append(((self._spent_before + self._cost) / self._daily, "daily_usd"))
        if self._tree_limit:
            shares.append((self._cost / self._tree_limit, "max_cost_usd"))
        if not shares:
            return
        share, budget = max(shares)
        limit = self._daily if budget == "daily_usd" else self._tree_limit

        def summary() -> str:
            return f"{share:.0%} of [budget] {budget}={limit:g} USD spent"

        self._e.record_spending(self._project, run_id, share, summary)

    def close(self) -> None:
        """Nothing is left open: the windows outlive the run on purpose."""
