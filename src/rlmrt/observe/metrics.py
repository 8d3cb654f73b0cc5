"""Prometheus metrics of runs, from the event stream (the `metrics` extra:
prometheus-client).

Names follow Prometheus conventions: an `rlm_` prefix, base units (seconds, USD),
`_total` on counters. Labels stay low-cardinality: model, purpose, sandbox kind,
project, outcomes and limit names; never run ids or prompts. The metrics live in
prometheus-client's default registry, so an app that already serves `/metrics` shows
them with no code; `rlm metrics serve` serves them for batch use.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from rlmrt.events import (
    CodeExecuted,
    Event,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    RunErrored,
    RunFinished,
    RunStarted,
    SandboxStarted,
    SubCallFinished,
    SubCallStarted,
)
from rlmrt.observe.execution import LIMITS, limit_hit

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

# The GenAI semantic conventions' buckets for gen_ai.client.operation.duration
MODEL_CALL_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
EXEC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Stop reasons that are not a budget or iteration limit
NOT_BUDGET = frozenset({"final", "error", "cancelled"})
# Label values whose series exist from a project's first run on
BUDGET_REASONS = (
    "max_iterations", "max_model_calls", "max_input_tokens", "max_output_tokens",
    "max_cost_usd", "max_wall_time_s", "daily_usd", "monthly_usd",
)  # fmt: skip


class RunMetrics:
    """The metrics, registered once in `registry`; `watch()` gives the event handler
    of one run tree."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.runs = Counter(
            "rlm_runs", "Finished runs.", ["project", "sandbox", "run", "stop_reason"],
            registry=registry,
        )  # fmt: skip
        self.runs_in_flight = Gauge(
            "rlm_runs_in_flight", "Root runs under way.", ["project"], registry=registry
        )
        self.sub_calls_in_flight = Gauge(
            "rlm_sub_calls_in_flight",
            "llm_query / rlm_query calls under way.",
            ["project", "kind"],
            registry=registry,
        )
        self.model_calls = Counter(
            "rlm_model_calls",
            "Model calls.",
            ["project", "model", "purpose", "outcome"],
            registry=registry,
        )
        self.model_call_seconds = Histogram(
            "rlm_model_call_duration_seconds",
            "Duration of model calls.",
            ["model"],
            buckets=MODEL_CALL_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "rlm_tokens",
            "Tokens of model calls, by direction (input, output).",
            ["project", "model", "direction"],
            registry=registry,
        )
        self.token_parts = Counter(
            "rlm_token_parts",
            "Parts of rlm_tokens the providers report: input tokens read from or written to"
            " the prompt cache (cache_read, cache_write), output tokens spent reasoning"
            " (reasoning).",
            ["project", "model", "part"],
            registry=registry,
        )
        self.cost = Counter(
            "rlm_cost_usd", "Cost of model calls in USD.", ["project", "model"], registry=registry
        )
        self.executions = Counter(
            "rlm_code_executions",
            "Code executions, by outcome (ok, error).",
            ["project", "sandbox", "outcome"],
            registry=registry,
        )
        self.execution_seconds = Histogram(
            "rlm_code_execution_duration_seconds",
            "Duration of code executions.",
            ["sandbox"],
            buckets=EXEC_BUCKETS,
            registry=registry,
        )
        self.sandbox_starts = Counter(
            "rlm_sandbox_starts",
            "Sandboxes runs got, by start (cold, pooled).",
            ["sandbox", "start"],
            registry=registry,
        )
        self.sandbox_start_seconds = Histogram(
            "rlm_sandbox_start_duration_seconds",
            "How long a run waited for its sandbox.",
            ["sandbox", "start"],
            buckets=EXEC_BUCKETS,
            registry=registry,
        )
        self.limit_hits = Counter(
            "rlm_sandbox_limit_hits",
            "Code executions stopped by a sandbox limit.",
            ["sandbox", "limit"],
            registry=registry,
        )
        self.budget_stops = Counter(
            "rlm_budget_stops",
            "Root runs ended by a budget or iteration limit.",
            ["project", "reason"],
            registry=registry,
        )
        self.errors = Counter(
            "rlm_errors",
            "Errors of runs and model calls, by kind (exception class).",
            ["project", "kind"],
            registry=registry,
        )

    def watch(self, project: str | None) -> TreeMetrics:
        return TreeMetrics(self, project or "")


class TreeMetrics:
    """The event handler of one run tree (knows its sandbox kind and project)."""

    def __init__(self, metrics: RunMetrics, project: str) -> None:
        self._m = metrics
        self._project = project
        self._sandbox = ""
        self._root_open = False
        self._open_subs: dict[str, str] = {}  # call_id -> kind

    def __call__(self, event: Event) -> None:
        m, project = self._m, self._project
        if isinstance(event, ModelCallFinished):
            m.model_calls.labels(project, event.model, event.purpose, "ok").inc()
            m.model_call_seconds.labels(event.model).observe(event.duration_s)
            m.tokens.labels(project, event.model, "input").inc(event.input_tokens)
            m.tokens.labels(project, event.model, "output").inc(event.output_tokens)
            for part, count in (
                ("cache_read", event.cache_read_tokens),
                ("cache_write", event.cache_write_tokens),
                ("reasoning", event.reasoning_tokens),
            ):
                if count:
                    m.token_parts.labels(project, event.model, part).inc(count)
            m.cost.labels(project, event.model).inc(event.cost_usd)
        elif isinstance(event, ModelCallFailed):
            m.model_calls.labels(project, event.model, event.purpose, "error").inc()
            m.model_call_seconds.labels(event.model).observe(event.duration_s)
            m.errors.labels(project, event.error_type).inc()
        elif isinstance(event, CodeExecuted):
            outcome = "ok" if event.error is None else "error"
            m.executions.labels(project, self._sandbox, outcome).inc()
            m.execution_seconds.labels(self._sandbox).observe(event.duration_s)
            limit = limit_hit(event.error)
            if limit is not None:
                m.limit_hits.labels(self._sandbox, limit).inc()
        elif isinstance(event, SubCallStarted):
            self._open_subs[event.call_id] = event.sub_kind
            m.sub_calls_in_flight.labels(project, event.sub_kind).inc()
        elif isinstance(event, SubCallFinished):
            if self._open_subs.pop(event.call_id, None) is not None:
                m.sub_calls_in_flight.labels(project, event.sub_kind).dec()
        elif isinstance(event, ModelCallStarted):
            # series start at 0, so that Prometheus' rate() sees the first failure
            m.model_calls.labels(project, event.model, event.purpose, "error")
            m.model_calls.labels(project, event.model, event.purpose, "ok")
        elif isinstance(event, RunStarted):
            if event.parent_call_id is None:
                self._sandbox = event.sandbox
                self._root_open = True
                m.runs_in_flight.labels(project).inc()
                m.executions.labels(project, event.sandbox, "error")
                for limit in LIMITS:
                    m.limit_hits.labels(event.sandbox, limit)
                for reason in BUDGET_REASONS:
                    m.budget_stops.labels(project, reason)
        elif isinstance(event, SandboxStarted):
            start = "pooled" if event.pooled else "cold"
            m.sandbox_starts.labels(event.sandbox, start).inc()
            m.sandbox_start_seconds.labels(event.sandbox, start).observe(event.start_s)
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        elif isinstance(event, RunErrored):
            m.errors.labels(project, event.error_type).inc()

    def _run_finished(self, event: RunFinished) -> None:
        m, project = self._m, self._project
        root = event.parent_call_id is None
        m.runs.labels(project, self._sandbox, "root" if root else "child", event.stop_reason).inc()
        if root:
            if event.partial and event.stop_reason not in NOT_BUDGET:
                m.budget_stops.labels(project, event.stop_reason).inc()
            self.close()

    def close(self) -> None:
        """Take what the tree left under way out of the in-flight gauges."""
        if self._root_open:
            self._root_open = False
            self._m.runs_in_flight.labels(self._project).dec()
        for kind in self._open_subs.values():
            self._m.sub_calls_in_flight.labels(self._project, kind).dec()
        self._open_subs.clear()


_lock = threading.Lock()


@cache
def run_metrics() -> RunMetrics:
    """The process's metrics, in prometheus-client's default registry."""
    with _lock:
        return RunMetrics()


def serve_metrics(port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread]:
    """Serve the process's metrics at http://host:port/metrics (stop: `.shutdown()`)."""
    from prometheus_client import start_http_server

    metrics = run_metrics()
    return start_http_server(port, addr=host, registry=metrics.registry)
