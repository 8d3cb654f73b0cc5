"""Alert rules on real scripted runs: a budget crossed, failing model calls, sandbox
limit hits; delivered to a webhook (with retries), to a real Alertmanager that forwards
them, never failing or slowing a run when the receiver is down; and the shipped
Prometheus rules, checked by promtool and firing on a Prometheus that scrapes a run
that errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from daemons import (
    ALERTMANAGER,
    PROMETHEUS,
    PROMTOOL,
    free_port,
    prometheus,
    query,
    running,
)
from scripted import PRICES, one_sub_call, repl
from webhook_support import webhook

from rlmrt.observe.metrics import serve_metrics
from rlmrt.observe.watchers import alert_evaluator
from rlmrt.testing import ChatRequest, Reply

RULES_FILE = Path(__file__).parents[2] / "src" / "rlmrt" / "observe" / "prometheus-rules.yml"


def flush(rlm_settings: dict) -> None:
    from rlmrt.config import ObserveSettings

    sender = alert_evaluator(ObserveSettings(**rlm_settings))._deliver
    assert sender.flush(30)  # type: ignore[attr-defined]


def test_a_run_crossing_a_budget_alerts_the_webhook(serve, make_rlm) -> None:
    server = serve(one_sub_call)
    with webhook() as hook:
        hook.fail_first = 1  # the first try fails: the sender retries
        observe = {
            "alerts": [{"kind": "budget", "threshold": 0.5, "name": "HalfSpent"}],
            "alert_webhook": hook.url,
        }
        with make_rlm(
            server, prices=PRICES, max_cost_usd=1.0, project_name="alerted", observe=observe
        ) as rlm:
            result = rlm.completion("go", context="abc")
        assert result.usage.cost_usd >= 0.5
        flush(observe)
        (body,) = hook.wait(1)
    assert body["name"] == "HalfSpent" and body["kind"] == "budget"
    assert body["project"] == "alerted" and body["run_id"] == result.run_id
    assert body["value"] >= 0.5 and "[budget] max_cost_usd=1 USD" in body["summary"]


def test_failing_model_calls_and_limit_hits_alert(serve, make_rlm) -> None:
    calls = {"n": 0}

    def flaky(request: ChatRequest) -> Reply | str:
        if not request.is_rlm_root:
            calls["n"] += 1
            return Reply(status=500, text="down")
        if any(m["role"] == "assistant" for m in request.messages):
            return repl("FINAL('done')")
        return repl("print(llm_query_batched(['a', 'b']))\nwhile True: pass")

    server = serve(flaky)
    with webhook() as hook:
        observe = {
            "alerts": [
                {"kind": "error_rate", "threshold": 0.5, "min_events": 2},
                {"kind": "limit_hits", "threshold": 1},
            ],
            "alert_webhook": hook.url,
        }
        with make_rlm(server, exec_timeout_s=0.3, observe=observe) as rlm:
            rlm.completion("go", context="abc")
        flush(observe)
        bodies = hook.wait(2)
    assert calls["n"] >= 2
    assert {b["name"] for b in bodies} == {"RlmModelErrorRate", "RlmSandboxLimitHits"}


def test_an_unreachable_receiver_never_fails_or_slows_a_run(serve, make_rlm) -> None:
    server = serve(one_sub_call)
    port = free_port()  # nothing listens there
    observe = {
        "alerts": [{"kind": "budget", "threshold": 0.01}],
        "alert_webhook": f"http://127.0.0.1:{port}/hook",
        "alertmanager_url": f"http://127.0.0.1:{port}",
    }
    with make_rlm(server, prices=PRICES, max_cost_usd=1.0, observe=observe) as rlm:
        result = rlm.completion("go", context="abc")
    assert result.answer == "done"
    sender = alert_evaluator(
        __import__("rlmrt.config", fromlist=["ObserveSettings"]).ObserveSettings(**observe)
    )._deliver
    assert sender.flush(30)  # type: ignore[attr-defined]
    assert sender.failures == 2 and sender.sent == 0  # type: ignore[attr-defined]


@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool: rlm setup observe")
def test_the_shipped_prometheus_rules_pass_promtool() -> None:
    import subprocess

    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES_FILE)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


@pytest.mark.slow
@pytest.mark.skipif(ALERTMANAGER is None, reason="needs alertmanager: rlm setup observe")
def test_alertmanager_forwards_a_budget_alert(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(one_sub_call)
    with webhook() as hook:
        port = free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 1s\n"
            "receivers:\n  - name: hook\n    webhook_configs:\n"
            f"      - url: '{hook.url}'\n"
        )
        assert ALERTMANAGER is not None
        args = [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        url = f"http://127.0.0.1:{port}"
        with running(args, f"{url}/-/ready", tmp_path / "alertmanager.log"):
            observe = {
                "alerts": [{"kind": "budget", "threshold": 0.5, "severity": "critical"}],
                "alertmanager_url": url,
            }
            with make_rlm(
                server, prices=PRICES, max_cost_usd=1.0, project_name="am", observe=observe
            ) as rlm:
                result = rlm.completion("go", context="abc")
            flush(observe)
            (notice,) = hook.wait(1)
    (alert,) = notice["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "RlmBudgetThreshold"
    assert alert["labels"]["project"] == "am" and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["run_id"] == result.run_id


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(PROMETHEUS is None, reason="needs prometheus: rlm setup observe")
def test_the_shipped_rules_fire_on_a_run_that_errors(serve, make_rlm, tmp_path: Path) -> None:
    broken = {"on": False}

    def sometimes(request: ChatRequest) -> Reply | str:
        if broken["on"] and not request.is_rlm_root:  # the llm_query calls fail
            return Reply(status=500, text="down")
        return one_sub_call(request)

    server = serve(sometimes)
    port = free_port()
    metrics_server, thread = serve_metrics(port)
    project = "rules-fire"
    try:
        with prometheus(tmp_path, [f"127.0.0.1:{port}"], rules=RULES_FILE) as url:
            with make_rlm(server, project_name=project) as rlm:
                rlm.completion("go", context="abc")  # the series exist, with no errors
                # Prometheus saw the error series at 0 (twice) before the errors
                errors = (
                    f'rlm_model_calls_total{{project="{project}",outcome="error",purpose="sub"}}'
                )
                scraped = f"count_over_time({errors}[1m]) >= 2"
                deadline = time.monotonic() + 60
                while not query(url, scraped):
                    assert time.monotonic() < deadline, "prometheus did not scrape"
                    time.sleep(0.5)
                broken["on"] = True
                for _ in range(3):
                    rlm.completion("go", context="abc")
            deadline = time.monotonic() + 60
            active: list[dict] = []
            while time.monotonic() < deadline:
                alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                active = [
                    a
                    for a in alerts
                    if a["labels"]["alertname"] == "RlmModelErrorRate"
                    and a["labels"].get("project") == project
                ]
                if active:
                    break
                time.sleep(1)
            seen = query(url, f"{errors}[1m]")
            rules = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
        thread.join(timeout=5)
    # the rule matched (it fires after its `for: 2m`; pending means the condition holds)
    assert active, (seen, rules)
    assert active[0]["state"] in ("pending", "firing")
