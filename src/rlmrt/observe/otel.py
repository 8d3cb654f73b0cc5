"""Whether and where a run's spans go: the `[observe]` settings, the `OTEL_*` variables
and the process's own tracer provider.

Tracing is on when `[observe] trace` is true (`rlm run --trace`), or, when it is not
set, when the process already has a tracer provider (Logfire, the user's app): then
rlmrt's spans join that provider and the caller's current trace. Otherwise rlmrt
builds its own provider with a batching OTLP exporter, so a slow or unreachable
collector never holds up a run. Nothing here imports OpenTelemetry unless tracing is
on, so `import rlmrt` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rlmrt.errors import MissingDependencyError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from rlmrt.config import ObserveSettings, RLMConfig
    from rlmrt.events import Event
    from rlmrt.observe.spans import SpanRecorder

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTRUMENTATION_NAME = "rlmrt"

_own_providers: dict[tuple[str | None, str, str], TracerProvider] = {}
_lock = threading.Lock()


def _has_global_provider() -> bool:
    """True when the process set an SDK tracer provider (without importing the API
    when nothing did)."""
    if "opentelemetry.trace" not in sys.modules:
        return False
    from opentelemetry import trace

    return not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


def tracing_enabled(settings: ObserveSettings) -> bool:
    if settings.trace is not None:
        return settings.trace
    return _has_global_provider()


def capture_content(settings: ObserveSettings) -> bool:
    return settings.trace_content or os.environ.get(CAPTURE_ENV, "").strip().lower() == "true"


def tracer(settings: ObserveSettings) -> Tracer:
    """The tracer of the process's provider, or of rlmrt's own one for these settings."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-sdk", "otel") from exc
    version = _version()
    if _has_global_provider():
        return trace.get_tracer(INSTRUMENTATION_NAME, version)
    return own_provider(settings).get_tracer(INSTRUMENTATION_NAME, version)


@functools.cache
def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rlmrt")
    except PackageNotFoundError:
        return None


def own_provider(settings: ObserveSettings) -> TracerProvider:
    """rlmrt's tracer provider for these settings, made once per process; it flushes
    when the process exits."""
    protocol = (
        settings.otlp_protocol
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    service = settings.service_name or os.environ.get("OTEL_SERVICE_NAME") or "rlmrt"
    key = (settings.otlp_endpoint, protocol, service)
    with _lock:
        provider = _own_providers.get(key)
        if provider is None:
            provider = _build_provider(settings.otlp_endpoint, protocol, service)
            _own_providers[key] = provider
        return provider


def _build_provider(endpoint: str | None, protocol: str, service: str) -> TracerProvider:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-sdk", "otel") from exc
    from rlmrt.observe.otlp_export import CountedExporter, export_timeout

    inner: SpanExporter
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingDependencyError("opentelemetry-exporter-otlp-proto-grpc", "otel") from exc
        # an http:// endpoint means a plain-text channel (the exporter reads the scheme)
        url = endpoint
        inner = OTLPSpanExporter(endpoint=endpoint, timeout=export_timeout())
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HTTPSpanExporter,
            )
        except ImportError as exc:
            raise MissingDependencyError("opentelemetry-exporter-otlp-proto-http", "otel") from exc
        # OTLP/HTTP takes the signal's full path; OTEL_EXPORTER_OTLP_ENDPOINT is a base
        url = endpoint
        if endpoint and "/v1/" not in endpoint:
            url = endpoint.rstrip("/") + "/v1/traces"
        inner = HTTPSpanExporter(endpoint=url, timeout=export_timeout())
    exporter = CountedExporter(inner, url or "the OTLP endpoint")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def span_recorder(config: RLMConfig, emit: Callable[[Event], None]) -> SpanRecorder | None:
    """The span recorder of one run tree, or None when tracing is off. Call it where
    the run starts: the root span joins the OpenTelemetry context current there."""
    if not tracing_enabled(config.observe):
        return None
    found = tracer(config.observe)
    from opentelemetry import context as otel_context

    from rlmrt.observe.spans import SpanRecorder

    return SpanRecorder(
        found,
        parent=otel_context.get_current(),
        capture_content=capture_content(config.observe),
        api_base=config.llm.api_base,
        emit=emit,
    )
