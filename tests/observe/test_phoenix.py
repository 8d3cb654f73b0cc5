"""A real OTLP backend receives a run's spans: Arize Phoenix on 127.0.0.1 (from its own
venv, see `rlm setup observe`, with its storage in a temp folder), queried back
through Phoenix's own client for the run's spans, their parents and token counts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from daemons import free_port, running
from scripted import with_child_run

from browser import CHROMIUM, capture
from rlmrt.config import ObserveSettings
from rlmrt.observe.otel import own_provider

PHOENIX_VENV = Path(
    os.environ.get("RLMRT_PHOENIX_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlmrt" / "phoenix"
)
PHOENIX = PHOENIX_VENV / "bin" / "phoenix"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),  # Phoenix takes 20-80 s to start on a busy machine
    pytest.mark.skipif(not PHOENIX.exists(), reason="needs Phoenix: rlm setup observe"),
]

# Phoenix's own client, run in Phoenix's venv: the spans of one trace as JSON
QUERY = """
import json, sys
from phoenix.client import Client
spans = Client(base_url=sys.argv[1]).spans.get_spans(
    project_identifier="default", trace_ids=[sys.argv[2]], limit=1000
)
print(json.dumps(spans, default=str))
"""


@pytest.fixture(scope="module")
def phoenix_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Phoenix's OTLP endpoints by protocol; its web and query API is the http one."""
    folder = tmp_path_factory.mktemp("phoenix")
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(folder),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
    }
    url = f"http://127.0.0.1:{port}"
    args = [str(PHOENIX), "serve"]
    with running(args, f"{url}/healthz", folder / "phoenix.log", env=env, ready_within_s=90):
        yield {"http/protobuf": url, "grpc": f"http://127.0.0.1:{grpc_port}"}


@pytest.fixture(scope="module")
def phoenix(phoenix_endpoints: dict[str, str]) -> str:
    return phoenix_endpoints["http/protobuf"]


def spans_of(url: str, trace_id: str, count: int) -> list[dict[str, object]]:
    """The trace's spans once Phoenix has stored `count` of them (it ingests in the
    background)."""
    deadline = time.monotonic() + 30
    while True:
        found = subprocess.run(
            [str(PHOENIX_VENV / "bin" / "python"), "-c", QUERY, url, trace_id],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        spans: list[dict[str, object]] = json.loads(found.stdout)
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_phoenix_receives_the_spans_of_a_run(
    phoenix_endpoints: dict[str, str], phoenix: str, serve, make_rlm, protocol: str
) -> None:
    server = serve(with_child_run)
    settings = {
        "trace": True,
        "otlp_endpoint": phoenix_endpoints[protocol],
        "otlp_protocol": protocol,
        "service_name": "rlmrt-test",
    }
    with make_rlm(server, max_depth=1, **settings) as rlm:
        result = rlm.completion("Shout it", context="quiet words")
    own_provider(ObserveSettings(**settings)).force_flush()
    assert result.trajectory_path is not None
    events = [json.loads(line) for line in result.trajectory_path.read_text().splitlines()]
    root_link = next(e for e in events if e["kind"] == "trace_linked" and e["depth"] == 0)

    spans = spans_of(phoenix, root_link["trace_id"], 10)
    # 2 runs, 4 model calls, 2 executions, 2 sub-calls
    assert len(spans) == 10
    by_id = {s["context"]["span_id"]: s for s in spans}  # type: ignore[index]
    root = by_id[root_link["span_id"]]
    assert root["name"] == "invoke_agent rlm" and root["parent_id"] is None
    assert root["attributes"]["rlm.run_id"] == result.run_id  # type: ignore[index]
    for span in spans:
        if span is not root:
            assert span["parent_id"] in by_id
    chats = [s for s in spans if s["name"] == "chat openai/test-model"]
    assert len(chats) == 4
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in chats) == (  # type: ignore[index]
        result.usage.input_tokens
    )
    assert sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in chats) == (  # type: ignore[index]
        result.usage.output_tokens
    )
    child = next(s for s in spans if s["name"] == "invoke_agent rlm" and s is not root)
    parent = by_id[child["parent_id"]]  # type: ignore[index]
    assert parent["name"] == "execute_tool rlm_query"
    assert by_id[parent["parent_id"]]["name"] == "execute_tool repl"  # type: ignore[index]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs chromium: rlm setup browser")
def test_phoenix_shows_the_trace_in_chromium(phoenix: str, serve, make_rlm, tmp_path) -> None:
    """The trace page of a run, rendered by a real headless Chromium; the screenshot is
    kept in tests/artifacts/ (the README's picture is one of these)."""
    server = serve(with_child_run)
    settings = {"trace": True, "otlp_endpoint": phoenix, "trace_content": True}
    with make_rlm(server, max_depth=1, **settings) as rlm:
        result = rlm.completion("Shout it", context="quiet words")
    own_provider(ObserveSettings(**settings)).force_flush()
    assert result.trajectory_path is not None
    events = [json.loads(line) for line in result.trajectory_path.read_text().splitlines()]
    trace_id = next(e for e in events if e["kind"] == "trace_linked")["trace_id"]
    assert len(spans_of(phoenix, trace_id, 10)) == 10
    projects = httpx.get(f"{phoenix}/v1/projects", timeout=10).json()["data"]
    project_id = next(p["id"] for p in projects if p["name"] == "default")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are kept, not committed
    png = ARTIFACTS / "phoenix-trace.png"
    ready = "document.body.innerText.includes('execute_tool rlm_query')"
    page = capture(
        f"{phoenix}/projects/{project_id}/traces/{trace_id}", ready, png, tmp_path / "profile"
    )
    print(f"screenshot: {png}")
    assert page.png.startswith(b"\x89PNG\r\n\x1a\n") and len(page.png) > 50_000
    for name in ("invoke_agent rlm", "execute_tool repl", "execute_tool llm_query"):
        assert name in page.html, name
    assert result.run_id in page.html  # the root span's attributes are shown
