"""The telemetry consumers of one run tree, as the settings ask for them: metrics,
alerts, then spans (last, so every other consumer sees a run start before its trace link).

`Engine.run` subscribes each to the tree's bus and closes them when the run ends,
however it ends."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from rlmrt.errors import MissingDependencyError
from rlmrt.observe.otel import span_recorder

if TYPE_CHECKING:
    from rlmrt.config import ObserveSettings, RLMConfig
    from rlmrt.events import Event
    from rlmrt.observe.alerts import AlertEvaluator


class RunWatcher(Protocol):
    def __call__(self, event: Event) -> None: ...

    def close(self) -> None:
        """The run ended: release what it left open (spans, in-flight gauges)."""


def metrics_enabled(settings: ObserveSettings) -> bool:
    if settings.metrics is not None:
        if settings.metrics and importlib.util.find_spec("prometheus_client") is None:
            raise MissingDependencyError("prometheus-client", "metrics")
        return settings.metrics
    return importlib.util.find_spec("prometheus_client") is not None


def run_watchers(
    config: RLMConfig, emit: Callable[[Event], None], *, spent_today_usd: float = 0.0
) -> list[RunWatcher]:
    """`spent_today_usd`: what the project spent earlier today, for budget alerts."""
    found: list[RunWatcher] = []
    if metrics_enabled(config.observe):
        from rlmrt.observe.metrics import run_metrics

        found.append(run_metrics().watch(config.observe.project))
    if config.observe.alerts:
        found.append(alert_evaluator(config.observe).watch(config, spent_today_usd))
    spans = span_recorder(config, emit)
    if spans is not None:
        found.append(spans)
    return found


_evaluators: dict[str, AlertEvaluator] = {}
_evaluators_lock = threading.Lock()


def alert_evaluator(settings: ObserveSettings) -> AlertEvaluator:
    """The process's evaluator for these rules and receivers (its windows span runs)."""
    from rlmrt.observe.alert_sender import AlertSender
    from rlmrt.observe.alerts import AlertEvaluator

    key = settings.model_dump_json(include={"alerts", "alert_webhook", "alertmanager_url"})
    with _evaluators_lock:
        evaluator = _evaluators.get(key)
        if evaluator is None:
            sender = AlertSender(
                webhook=settings.alert_webhook, alertmanager=settings.alertmanager_url
            )
            evaluator = AlertEvaluator(list(settings.alerts), sender)
            _evaluators[key] = evaluator
        return evaluator
