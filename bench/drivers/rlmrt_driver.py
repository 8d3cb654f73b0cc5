"""Run the counting task through rlmrt (this project); see bench/README.md.

The context is given as `context=`; the root code calls `llm_query_batched` and ends
with `FINAL(total)` in a ```repl block (the paper's protocol). Telemetry is off unless
the spec's "observe" asks for spans and metrics ("memory": an in-memory exporter;
"otlp": OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT). Trajectories are saved
as by default, but into the driver's temporary working directory instead of ~/.rlmrt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import drive


def setup(spec: dict[str, Any]) -> Callable[[str], str]:
    from rlmrt import RLM

    observe = spec.get("observe")
    if observe == "memory":
        _in_memory_tracing()
    # the default sandbox (process) unless the spec names one (rlmrt-local: "local");
    # telemetry (spans and metrics) only for the rlmrt+otel/+otlp columns, so the driver
    # also drives a --baseline checkout that predates those settings
    sandbox = {"sandbox": spec["sandbox"]} if spec.get("sandbox") else {}
    telemetry = {"trace": True, "metrics": True} if observe is not None else {}
    rlm = RLM(
        model="openai/bench-model",
        api_base=spec["url"],
        api_key="sk-bench",
        max_depth=1,
        trajectory_dir=Path.cwd() / "runs",
        **sandbox,
        **telemetry,
    )

    def run(context: str) -> str:
        return str(rlm.completion(spec["question"], context=context).answer)

    return run


def _in_memory_tracing() -> None:
    """The process's tracer provider, batching into the SDK's in-memory exporter (as an
    app with its own provider would): rlmrt's spans join it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)


if __name__ == "__main__":
    drive(setup)
