"""Delivery of alerts: a log line, a webhook (JSON body) and Alertmanager's API.

Alerts are queued and sent by one background thread, with retries and backoff, so a
slow or unreachable receiver never holds up a run. A receiver that keeps failing is
counted (`failures`) and logged once, not once per alert. At exit, what is queued
gets a short grace period to go out.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any

import httpx

from rlmrt.observe.alerts import Alert

log = logging.getLogger("rlmrt.alerts")

RETRIES = 3
BACKOFF_S = 0.5  # then 1 s, 2 s
TIMEOUT_S = 5.0
EXIT_GRACE_S = 2.0


class AlertSender:
    def __init__(self, *, webhook: str | None, alertmanager: str | None) -> None:
        self.webhook = webhook
        self.alertmanager = alertmanager.rstrip("/") if alertmanager else None
        self.sent = 0
        self.failures = 0
        self._failed_targets: set[str] = set()
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="rlmrt-alerts", daemon=True)
        self._thread.start()
        atexit.register(self.flush, EXIT_GRACE_S)

    def __call__(self, alert: Alert) -> None:
        log.warning("alert %s (%s): %s", alert.name, alert.severity, alert.summary)
        if self.webhook or self.alertmanager:
            self._queue.put(alert)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until what is queued was sent (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _work(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            while True:
                alert = self._queue.get()
                try:
                    if alert is None:
                        return
                    if self.webhook:
                        self._post(client, self.webhook, alert.to_dict())
                    if self.alertmanager:
                        url = f"{self.alertmanager}/api/v2/alerts"
                        self._post(client, url, [alertmanager_alert(alert)])
                finally:
                    self._queue.task_done()

    def _post(self, client: httpx.Client, url: str, body: Any) -> None:
        error = ""
        for attempt in range(RETRIES):
            try:
                response = client.post(url, json=body)
                if response.status_code < 300:
                    self.sent += 1
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = str(exc) or type(exc).__name__
            if attempt + 1 < RETRIES:
                time.sleep(BACKOFF_S * 2**attempt)
        self.failures += 1
        if url not in self._failed_targets:
            self._failed_targets.add(url)
            log.warning(
                "cannot send alerts to %s (%s); further failures are only counted", url, error
            )


def alertmanager_alert(alert: Alert) -> dict[str, Any]:
    """An alert in Alertmanager's v2 API shape."""
    started = datetime.fromtimestamp(alert.ts, timezone.utc).isoformat()
    return {
        "labels": {
            "alertname": alert.name,
            "severity": alert.severity,
            "project": alert.project,
            "kind": alert.kind,
            "service": "rlmrt",
        },
        "annotations": {"summary": alert.summary, "run_id": alert.run_id},
        "startsAt": started,
    }
