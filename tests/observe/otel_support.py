"""A process-wide SDK tracer provider with an in-memory exporter, for the span tests.

OpenTelemetry lets a process set its global provider once; the fixture puts the API's
globals back afterwards so other tests run with tracing off, as a plain process does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


@contextmanager
def global_provider() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]


def children(spans: list[ReadableSpan], parent: ReadableSpan | None) -> list[ReadableSpan]:
    """The spans whose parent is `parent` (None: the roots), in start order."""
    wanted = parent.context.span_id if parent is not None else None  # type: ignore[union-attr]
    found = [s for s in spans if (s.parent.span_id if s.parent else None) == wanted]
    return sorted(found, key=lambda s: s.start_time or 0)


def shape(spans: list[ReadableSpan], parent: ReadableSpan | None = None) -> list[object]:
    """The span tree as nested [name, [children...]] lists."""
    return [[s.name, shape(spans, s)] for s in children(spans, parent)]
