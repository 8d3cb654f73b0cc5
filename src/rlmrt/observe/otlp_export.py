"""rlmrt's own OTLP span export: bounded in time, failures counted and logged once.

Used only when rlmrt builds its own tracer provider (the process has none), so the
exporter's logger quieted here serves rlmrt's exporter alone. Needs the `otel` extra.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("rlmrt")

# Seconds one batch may take, retries included, unless OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT
# says otherwise: the SDK's 10 s of retries would hold up a CLI's exit by that much
# when the collector is down.
EXPORT_TIMEOUT_S = 3.0
TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
# The SDK logs each retry and each failed batch; rlmrt logs the first failure instead
SDK_RETRY_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)


def export_timeout() -> float | None:
    """None when the user set the OTLP timeout (the exporter reads it), else ours."""
    return None if any(os.environ.get(name) for name in TIMEOUT_VARIABLES) else EXPORT_TIMEOUT_S


class CountedExporter(SpanExporter):
    """Wraps an exporter: counts failed batches and logs the first one."""

    def __init__(self, inner: SpanExporter, target: str) -> None:
        self.inner = inner
        self.target = target
        self.failures = 0
        for name in SDK_RETRY_LOGGERS:
            logging.getLogger(name).addFilter(_no_retry_chatter)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
            if self.failures == 1:
                log.warning(
                    "cannot export spans to %s; runs go on, further failures are only counted",
                    self.target,
                )
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _no_retry_chatter(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return not message.startswith(("Transient error", "Failed to export"))
