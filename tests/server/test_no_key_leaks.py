"""No raw key or token anywhere: after good and bad keys, revoked and expired keys, good
and refused JWT bearer tokens, 429s and a provider error quoting the provider's key (in
a completion and in an async run, whose events are kept), neither the server's log
(uvicorn's access log included), nor an error body, nor the audit log, nor any file of
the database, nor any trajectory, nor `GET /metrics`, nor any span the server exported
(OTLP, message content on) holds a key or a token.

The server's spans are its runs' (the engine's span tree: agent, model calls, code);
it makes no span of its own per HTTP request or authentication."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from jwks import IdentityProvider
from otlp_collector import OTLPCollector
from serving import PROVIDER_KEY, make_keys, model_reply, server_env, start_server

from rlmrt.testing import ScriptedOpenAIServer

pytestmark = pytest.mark.slow  # its own server process

TOML = """
[sandbox]
kind = "local"

[server]
key_requests_per_minute = 2
{jwt}

[observe]
trace = true
trace_content = true
otlp_endpoint = "{otlp}"
otlp_protocol = "http/protobuf"
metrics = true
"""
QUESTION = [{"role": "user", "content": "How long is the context?"}]


def test_no_raw_key_in_logs_bodies_audit_or_database(
    tmp_path: Path,
    serve: Callable[..., ScriptedOpenAIServer],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    idp = IdentityProvider()
    idp.start()
    collector = OTLPCollector()
    collector.start()
    (tmp_path / "rlm.toml").write_text(TOML.format(jwt=idp.toml(), otlp=collector.endpoint))
    token = idp.token()
    refused = [
        idp.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        idp.token(aud="another-service"),
        idp.token("rsa", key=IdentityProvider().keys["rsa"]),
        idp.unsigned_token(),
        idp.hs256_with_public_key(),
        idp.token(tenant="nobody"),
    ]
    env = server_env(tmp_path / "home", serve(model_reply))
    keys = asyncio.run(make_keys(tmp_path / "home" / "server.db"))
    bogus = "rlm-" + "Q" * 43
    foreign = "sk-proj-" + "Z" * 40
    server = start_server(tmp_path, env)
    bodies: list[str] = []
    try:
        time.sleep(1.1)  # the expiring key's second is over
        with openai.OpenAI(base_url=server.url, api_key=keys["acme"], max_retries=0) as good:
            good.chat.completions.create(
                model="rlm", messages=QUESTION, extra_body={"context": "abc"}
            )
            list(
                good.chat.completions.create(
                    model="rlm", messages=QUESTION, stream=True, extra_body={"context": "ab"}
                )
            )
            with pytest.raises(openai.RateLimitError) as limited:
                good.chat.completions.create(model="rlm", messages=QUESTION)
            bodies.append(limited.value.response.text)
        with openai.OpenAI(base_url=server.url, api_key=keys["beta"], max_retries=0) as other:
            with pytest.raises(openai.InternalServerError) as failed:  # the provider's 401
                other.chat.completions.create(
                    model="rlm", messages=[{"role": "user", "content": "PLEASE FAIL"}]
                )
            bodies.append(failed.value.response.text)
        beta = {"Authorization": f"Bearer {keys['beta']}"}
        run = httpx.post(  # an async run: its events are kept in the database
            f"{server.url}/runs",
            headers=beta,
            json={"model": "rlm", "messages": [{"role": "user", "content": "PLEASE FAIL"}]},
        ).json()["id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/runs/{run}", headers=beta).json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for path in ("", "/events", "/trajectory"):
            bodies.append(httpx.get(f"{server.url}/runs/{run}{path}", headers=beta).text)
        assert "model_call_failed" in bodies[-1]
        with openai.OpenAI(base_url=server.url, api_key=token, max_retries=0) as jwt_client:
            jwt_client.chat.completions.create(
                model="rlm", messages=QUESTION, extra_body={"context": "abc"}
            )
        with httpx.Client(base_url=server.url) as http:
            for header in (
                *(f"Bearer {bad}" for bad in refused),
                f"Bearer {bogus}",
                f"Bearer {foreign}",
                f"Bearer {keys['revoked']}",
                f"Bearer {keys['expired']}",
                f"Basic {keys['acme']}",
                f"Bearer {keys['acme']}x",
            ):
                response = http.get("/models", headers={"Authorization": header})
                assert response.status_code == 401
                bodies.append(response.text)
            scraped = http.get(f"{server.root}/metrics")
            assert scraped.status_code == 200
            metrics = scraped.text
    finally:
        assert server.stop() == 0  # its span exporter flushes as it exits
        idp.stop()
        collector.stop()
    audit = run_cli(env, "audit", "list", "--json", cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    actions = [r["action"] for r in json.loads(audit.stdout)]
    assert actions.count("auth.fail") == 6 + len(refused) and actions.count("ratelimit.refuse") == 1
    # a completion, a stream, the provider's failure, the async run, the token's completion
    assert actions.count("run.finish") == 5

    signatures = [t.rsplit(".", 1)[1] for t in (token, *refused) if not t.endswith(".")]
    secrets = [*keys.values(), bogus, foreign, PROVIDER_KEY, token, *refused, *signatures]
    places = {
        "the server's log": server.log_text(),
        "an error body": "\n".join(bodies),
        "the audit log": audit.stdout,
        "the metrics": metrics,
        "the spans": collector.text(),
    }
    assert "rlm_runs_total{" in metrics  # the runs were counted
    names = collector.names()  # the runs' spans: agents, model calls (content on)
    assert any(n.startswith("invoke_agent") for n in names), names
    assert any(n.startswith("chat") for n in names), names
    assert "gen_ai.input.messages" in places["the spans"]
    for path in server.home.iterdir():
        if path.name.startswith("server.db"):
            places[str(path.name)] = path.read_bytes().decode("latin-1")
    assert 'GET /v1/models HTTP/1.1" 401' in places["the server's log"]  # access log on
    assert "server.db" in places
    runs = sorted((server.home / "runs").rglob("*.*"))
    assert runs  # the trajectories of the runs: the provider key is redacted there too
    checks = [(name, text, secrets) for name, text in places.items()] + [
        (str(path), path.read_text(errors="replace"), secrets) for path in runs
    ]
    leaks = [(name, s[:12]) for name, text, searched in checks for s in searched if s in text]
    assert leaks == []
