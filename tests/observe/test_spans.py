"""Spans of real scripted runs (GenAI conventions), read from the SDK's in-memory
exporter: the exact tree, the attributes, content only on request, the run id and the
trace id recorded in each other's records, and joining the caller's trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daemons import free_port
from opentelemetry import trace
from otel_support import global_provider, shape
from scripted import MODEL, with_child_run

from rlmrt.config import RLMConfig


def events_of(path: Path | None) -> list[dict[str, object]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_gives_the_span_tree_of_its_recursion(serve, make_rlm) -> None:
    server = serve(with_child_run)
    with global_provider() as exporter, make_rlm(server, max_depth=1) as rlm:
        result = rlm.completion("Shout it", context="quiet words")
    spans = list(exporter.get_finished_spans())
    chat = f"chat {MODEL}"
    assert shape(spans) == [
        [
            "invoke_agent rlm",
            [
                [chat, []],
                [
                    "execute_tool repl",
                    [
                        ["execute_tool llm_query", [[chat, []]]],
                        ["execute_tool rlm_query", [["invoke_agent rlm", [[chat, []]]]]],
                    ],
                ],
                [chat, []],
                ["execute_tool repl", []],
            ],
        ]
    ]
    assert len({s.context.trace_id for s in spans}) == 1
    assert all(s.attributes["rlm.run_id"] == result.run_id for s in spans)

    root = next(s for s in spans if s.parent is None)
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "rlm"
    assert root.attributes["rlm.depth"] == 0
    assert root.attributes["rlm.sandbox"] == RLMConfig().sandbox.kind  # the default
    assert root.attributes["rlm.stop_reason"] == "final"
    assert root.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    child = next(s for s in spans if s.name == "invoke_agent rlm" and s.parent is not None)
    assert child.attributes["rlm.depth"] == 1

    calls = [s for s in spans if s.name == chat]
    assert len(calls) == result.usage.model_calls == 4
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in calls) == (
        result.usage.input_tokens
    )
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in calls) == (
        result.usage.output_tokens
    )
    first = calls[0]
    assert first.kind is trace.SpanKind.CLIENT
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["gen_ai.request.model"] == MODEL
    assert first.attributes["gen_ai.response.model"] == MODEL
    assert first.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert first.attributes["server.address"] == "127.0.0.1"
    assert first.attributes["server.port"] == int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert "rlm.cost_usd" in first.attributes

    executions = [s for s in spans if s.name == "execute_tool repl"]
    assert all(s.attributes["gen_ai.tool.name"] == "repl" for s in executions)
    assert executions[0].attributes["rlm.exec.output_bytes"] == len(b"hi low\n")
    # no text of prompts, replies or code unless asked for
    for span in spans:
        assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(span.attributes)
        assert "gen_ai.tool.call.arguments" not in span.attributes

    # the trajectory names the trace; each run's link is its invoke_agent span
    links = [e for e in events_of(result.trajectory_path) if e["kind"] == "trace_linked"]
    agents = {f"{s.context.span_id:016x}": s for s in spans if s.name == "invoke_agent rlm"}
    assert len(links) == 2
    assert {link["span_id"] for link in links} == set(agents)
    assert {link["trace_id"] for link in links} == {f"{root.context.trace_id:032x}"}


def test_message_content_only_when_asked(serve, make_rlm, monkeypatch) -> None:
    server = serve(with_child_run)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with global_provider() as exporter, make_rlm(server, max_depth=1) as rlm:
        rlm.completion("Shout it", context="quiet words")
    spans = list(exporter.get_finished_spans())
    root = next(s for s in spans if s.parent is None)
    assert json.loads(root.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == (
        "Shout it"
    )
    assert "QUIET WORDS" in root.attributes["gen_ai.output.messages"]
    llm = next(s for s in spans if s.name == "execute_tool llm_query")
    assert llm.attributes["gen_ai.tool.call.arguments"] == "say hi"
    assert llm.attributes["gen_ai.tool.call.result"] == "hi"


async def test_a_run_joins_the_callers_current_trace(serve, make_rlm) -> None:
    server = serve(with_child_run)
    with global_provider() as exporter:
        rlm = make_rlm(server, max_depth=1)
        tracer = trace.get_tracer("the-app")
        with tracer.start_as_current_span("handle request") as outer:
            await rlm.acompletion("Shout it", context="quiet words")
        await rlm.aclose()
    spans = list(exporter.get_finished_spans())
    root = next(s for s in spans if s.name == "invoke_agent rlm" and s.attributes["rlm.depth"] == 0)
    assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id
    assert {s.context.trace_id for s in spans} == {outer.get_span_context().trace_id}


def test_a_sync_completion_joins_the_callers_current_trace_too(serve, make_rlm) -> None:
    server = serve(with_child_run)
    with (
        global_provider() as exporter,
        make_rlm(server, max_depth=1) as rlm,
        trace.get_tracer("the-app").start_as_current_span("batch item") as outer,
    ):
        rlm.completion("Shout it", context="quiet words")
    spans = list(exporter.get_finished_spans())
    root = next(s for s in spans if s.name == "invoke_agent rlm" and s.attributes["rlm.depth"] == 0)
    assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id


def test_no_spans_and_no_link_when_tracing_is_off(serve, make_rlm) -> None:
    server = serve(with_child_run)
    with make_rlm(server, max_depth=1) as rlm:
        result = rlm.completion("Shout it", context="quiet words")
    kinds = {e["kind"] for e in events_of(result.trajectory_path)}
    assert "trace_linked" not in kinds
    assert "code_started" in kinds


def test_trace_false_turns_off_a_joined_provider(serve, make_rlm) -> None:
    server = serve(with_child_run)
    with global_provider() as exporter, make_rlm(server, max_depth=1, trace=False) as rlm:
        rlm.completion("Shout it", context="quiet words")
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(("protocol", "path"), [("http/protobuf", "/v1/traces"), ("grpc", "")])
def test_an_unreachable_collector_does_not_fail_the_run(
    serve, make_rlm, caplog, protocol: str, path: str
) -> None:
    """The run ends as usual; the failed export is logged once, without the SDK's line
    per retry, over either OTLP protocol."""
    import logging

    from rlmrt.config import ObserveSettings
    from rlmrt.observe.otel import own_provider

    server = serve(with_child_run)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens
    settings = {"trace": True, "otlp_endpoint": endpoint, "otlp_protocol": protocol}
    with make_rlm(server, max_depth=1, **settings) as rlm:
        result = rlm.completion("Shout it", context="quiet words")
        result_2 = rlm.completion("Shout it", context="quiet words")
    assert result.answer == result_2.answer == "QUIET WORDS"
    provider = own_provider(ObserveSettings(**settings))
    with caplog.at_level(logging.WARNING):
        provider.force_flush()
        provider.shutdown()
    warnings = [r.getMessage() for r in caplog.records]
    assert [w for w in warnings if w.startswith("cannot export spans to")] == [
        f"cannot export spans to {endpoint}{path}; runs go on, further failures are only counted"
    ]
    assert not [w for w in warnings if "Transient error" in w or "Failed to export" in w]


def test_a_tool_call_is_an_execute_tool_span_under_its_code_block(serve, make_rlm) -> None:
    from rlmrt.testing import scripted
    from rlmrt.tools import tool

    @tool(version="3.0.0")
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    code = (
        "```repl\ntry:\n    tools.double('x')\nexcept TypeError:\n    pass\n"
        "FINAL(tools.double(4))\n```"
    )
    server = serve(scripted(root=[code]))
    with global_provider() as exporter, make_rlm(server) as rlm:
        assert rlm.completion("q", context="c", tools=[double]).answer == "8"
    spans = list(exporter.get_finished_spans())
    assert shape(spans) == [
        [
            "invoke_agent rlm",
            [
                [f"chat {MODEL}", []],
                ["execute_tool repl", [["execute_tool double", []], ["execute_tool double", []]]],
            ],
        ]
    ]
    bad, good = [s for s in spans if s.name == "execute_tool double"]
    assert good.attributes["gen_ai.tool.name"] == "double"
    assert good.attributes["rlm.tool.version"] == "3.0.0"
    assert bad.attributes["error.type"] == "TypeError" and "error.type" not in good.attributes
