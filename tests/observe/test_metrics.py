"""Prometheus metrics from the events of real scripted runs: the registry's values, and a
real Prometheus scraping them during the runs and answering PromQL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from daemons import PROMETHEUS, free_port, prometheus, wait_for
from prometheus_client import REGISTRY
from scripted import repl

from rlmrt.config import RLMConfig
from rlmrt.observe.metrics import serve_metrics
from rlmrt.testing import ChatRequest

KIND = RLMConfig().sandbox.kind  # the runs here use the default sandbox


def reply(request: ChatRequest) -> str:
    """Root: one block with two llm_query calls and an error, then FINAL."""
    if not request.is_rlm_root:
        return "hi"
    if any(m["role"] == "assistant" for m in request.messages):
        return repl("FINAL('done')")
    return repl("print(llm_query('a'), llm_query('b'))\n1/0")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_run_counts_its_calls_tokens_executions_and_errors(serve, make_rlm) -> None:
    server = serve(reply)
    project = "metrics-counts"
    model = "openai/test-model"
    with make_rlm(server, project_name=project) as rlm:
        result = rlm.completion("go", context="abc")
    calls = value(
        "rlm_model_calls_total", project=project, model=model, purpose="sub", outcome="ok"
    )
    assert calls == 2
    roots = value(
        "rlm_model_calls_total", project=project, model=model, purpose="root", outcome="ok"
    )
    assert roots == 2
    tokens_in = value("rlm_tokens_total", project=project, model=model, direction="input")
    tokens_out = value("rlm_tokens_total", project=project, model=model, direction="output")
    assert (tokens_in, tokens_out) == (result.usage.input_tokens, result.usage.output_tokens)
    assert value("rlm_model_call_duration_seconds_count", model=model) >= 4
    executions = {
        outcome: value("rlm_code_executions_total", project=project, sandbox=KIND, outcome=outcome)
        for outcome in ("ok", "error")
    }
    assert executions == {"ok": 1, "error": 1}
    runs = value("rlm_runs_total", project=project, sandbox=KIND, run="root", stop_reason="final")
    assert runs == 1
    assert value("rlm_runs_in_flight", project=project) == 0
    assert value("rlm_sub_calls_in_flight", project=project, kind="llm") == 0


def test_limit_hits_and_budget_stops(serve, make_rlm) -> None:
    def looping(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return "hi"
        return repl("while True: pass")

    server = serve(looping)
    project = "metrics-limits"
    before = value("rlm_sandbox_limit_hits_total", sandbox=KIND, limit="exec_timeout_s")
    with make_rlm(server, project_name=project, exec_timeout_s=0.2, max_iterations=2) as rlm:
        result = rlm.completion("go", context="abc")
    assert result.stop_reason == "max_iterations"
    after = value("rlm_sandbox_limit_hits_total", sandbox=KIND, limit="exec_timeout_s")
    assert after - before == 2
    stops = value("rlm_budget_stops_total", project=project, reason="max_iterations")
    assert stops == 1


def test_metrics_off_when_asked(serve, make_rlm) -> None:
    server = serve(reply)
    project = "metrics-off"
    with make_rlm(server, project_name=project, metrics=False) as rlm:
        rlm.completion("go", context="abc")
    assert (
        REGISTRY.get_sample_value(
            "rlm_runs_total",
            {"project": project, "sandbox": KIND, "run": "root", "stop_reason": "final"},
        )
        is None
    )


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="needs prometheus: rlm setup observe")
def test_prometheus_scrapes_real_runs(serve, make_rlm, tmp_path: Path) -> None:
    port = free_port()
    server_, thread = serve_metrics(port)
    try:
        assert "rlm_model_calls_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        with prometheus(tmp_path, [f"127.0.0.1:{port}"]) as url:
            server = serve(reply)
            project = "scraped"
            with make_rlm(server, project_name=project) as rlm:
                for _ in range(3):
                    rlm.completion("go", context="abc")
            calls = f'sum(rlm_model_calls_total{{project="{project}"}})'
            assert wait_for(url, calls, 12) == 12  # 3 runs x (2 root + 2 sub)
            errors = f'rlm_code_executions_total{{project="{project}",outcome="error"}}'
            assert wait_for(url, errors, 3) == 3
            runs = f'sum by (stop_reason) (rlm_runs_total{{project="{project}"}})'
            assert wait_for(url, runs, 3) == 3
            assert wait_for(url, f'rlm_runs_in_flight{{project="{project}"}}', 0) == 0
    finally:
        server_.shutdown()
        server_.server_close()
        thread.join(timeout=5)


def test_rlm_metrics_serve_counts_runs_of_other_processes(serve, make_rlm, tmp_path) -> None:
    """`rlm metrics serve` in its own process follows the trajectories runs write."""
    import os
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmrt.cli.main", "metrics", "serve", "--port", str(port),
         "--interval", "0.1"],
        env={**os.environ, "RLMRT_HOME": str(home)},
        stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        server = serve(reply)
        with make_rlm(server, trajectory_dir=home / "runs") as rlm:
            rlm.completion("go", context="abc")
            rlm.completion("go", context="abc")
        line = f'rlm_runs_total{{project="",run="root",sandbox="{KIND}",stop_reason="final"}} 2.0'
        while line not in httpx.get(url, timeout=5).text:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert 'rlm_runs_in_flight{project=""} 0.0' in httpx.get(url, timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    assert "serving metrics on" in (tmp_path / "serve.log").read_text()


def test_rlm_metrics_serve_on_a_busy_port_is_a_clear_error() -> None:
    import socket

    from typer.testing import CliRunner

    from rlmrt.cli.main import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["metrics", "serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_sandbox_starts_cold_then_from_the_pool(serve, make_rlm) -> None:
    """The process sandbox is pooled: the first run starts one cold (the pool refills in
    the background), a later run takes a started one."""
    import time

    server = serve(reply)
    labels = {"sandbox": "process"}
    before = {
        start: value("rlm_sandbox_starts_total", **labels, start=start)
        for start in ("cold", "pooled")
    }
    with make_rlm(server, sandbox="process", sandbox_pool=1) as rlm:
        first = rlm.completion("go", context="abc")
        time.sleep(3)  # the pool starts its next sandbox meanwhile
        second = rlm.completion("go", context="abc")
    after = {
        start: value("rlm_sandbox_starts_total", **labels, start=start)
        for start in ("cold", "pooled")
    }
    assert after["cold"] - before["cold"] >= 1
    assert after["pooled"] - before["pooled"] >= 1
    assert after["cold"] + after["pooled"] - sum(before.values()) == 2
    kinds = []
    for result in (first, second):
        assert result.trajectory_path is not None
        for line in result.trajectory_path.read_text().splitlines():
            if '"sandbox_started"' in line:
                kinds.append(json.loads(line)["pooled"])
    assert kinds == [False, True]
