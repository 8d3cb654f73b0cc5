"""Contract test of the Snipara client against a local server on 127.0.0.1.

This is a contract test: the real Snipara service is not reachable from here, so the
server below follows the documented shapes (/work/shared/snipara-api.md): one POST
endpoint per project, JSON-RPC 2.0 `tools/call`, `x-api-key` for `snp-` keys and
`Authorization: Bearer` for OAuth tokens, null arguments left out, replies as MCP
content blocks whose text is JSON, JSON-RPC error objects, HTTP errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rlmrt.context.snipara import SniparaProvider
from rlmrt.errors import ConfigError, RunError

SLUG = "my-project"
KEY = "snp-test-key"
REQUIRED = {
    "rlm_context_query": {"query"},
    "rlm_search": {"pattern"},
    "rlm_sections": set(),
    "rlm_read": {"start_line", "end_line"},
    "rlm_remember": {"content"},
    "rlm_recall": {"query"},
}


class FakeSnipara:
    def __init__(self) -> None:
        self.expected_auth: tuple[str, str] = ("x-api-key", KEY)
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.rpc_error: dict[str, Any] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        assert request.match_info["slug"] == SLUG
        header, value = self.expected_auth
        if request.headers.get(header) != value:
            return web.Response(status=401, text="bad credentials")
        if self.status != 200:
            return web.Response(status=self.status, text="upstream exploded")
        body = await request.json()
        self.requests.append(body)
        assert body["jsonrpc"] == "2.0"
        assert isinstance(body["id"], int)
        assert body["method"] == "tools/call"
        name, args = body["params"]["name"], body["params"]["arguments"]
        assert None not in args.values(), "null arguments must be left out"
        if self.rpc_error is not None:
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": self.rpc_error})
        missing = REQUIRED[name] - set(args)
        if missing:
            error = {"code": -32602, "message": f"missing {sorted(missing)}"}
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})
        payload = self.answer(name, args)
        result = {"content": [{"type": "text", "text": json.dumps(payload)}]}
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})

    @staticmethod
    def answer(name: str, args: dict[str, Any]) -> Any:
        if name == "rlm_context_query":
            assert 100 <= args["max_tokens"] <= 100_000
            return {
                "sections": [
                    {
                        "title": "Budgets",
                        "content": "A budget limits tokens." * 10,
                        "file": "docs/budget.md",
                        "lines": [10, 20],
                        "relevance_score": 0.9,
                        "token_count": 60,
                    },
                    {
                        "title": "Loop",
                        "content": "The loop runs.",
                        "file": "src/loop.py",
                        "start_line": 3,
                        "end_line": 9,
                        "relevance_score": 0.5,
                        "token_count": 60,
                    },
                ]
            }
        if name == "rlm_search":
            return {"matches": [{"line": 4, "text": args["pattern"]}]}
        if name == "rlm_sections":
            return {"sections": [{"title": args.get("filter", "all")}]}
        if name == "rlm_read":
            return {"lines": list(range(args["start_line"], args["end_line"] + 1))}
        if name == "rlm_remember":
            return {"memory_id": "m1", "stored": args}
        return {"memories": [{"content": "remembered", "query": args["query"]}]}


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSnipara, str]]:
    server = FakeSnipara()
    app = web.Application()
    app.router.add_post("/mcp/{slug}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}/mcp"
    await runner.cleanup()


async def test_search_maps_sections_to_hits_within_the_budget(
    fake: tuple[FakeSnipara, str],
) -> None:
    server, url = fake
    async with SniparaProvider(api_key=KEY, project_slug=SLUG, base_url=url) as snipara:
        hits = await snipara.search("budget", max_tokens=100)
        assert [(h.source, h.start_line, h.end_line, h.title) for h in hits] == [
            ("docs/budget.md", 10, 20, "Budgets")
        ]
        assert hits[0].score == 0.9
        both = await snipara.search("budget", max_tokens=5000, search_mode="keyword")
        assert len(both) == 2
    sent = [r["params"]["arguments"] for r in server.requests]
    assert sent[0] == {"query": "budget", "max_tokens": 100}  # unset options left out
    assert sent[1] == {"query": "budget", "max_tokens": 5000, "search_mode": "keyword"}
    assert server.requests[0]["id"] != server.requests[1]["id"]


async def test_other_tools(fake: tuple[FakeSnipara, str]) -> None:
    server, url = fake
    async with SniparaProvider(api_key=KEY, project_slug=SLUG, base_url=url) as snipara:
        assert await snipara.search_regex(r"def \w+") == {
            "matches": [{"line": 4, "text": r"def \w+"}]
        }
        assert await snipara.sections(filter="Intro") == {"sections": [{"title": "Intro"}]}
        assert await snipara.read_lines(3, 5) == {"lines": [3, 4, 5]}
        stored = await snipara.remember("use WAL", type="decision")
        assert stored["stored"] == {"content": "use WAL", "type": "decision"}
        recalled = await snipara.recall("wal", limit=2)
        assert recalled["memories"][0]["query"] == "wal"
    names = [r["params"]["name"] for r in server.requests]
    assert names == ["rlm_search", "rlm_sections", "rlm_read", "rlm_remember", "rlm_recall"]
    assert server.requests[4]["params"]["arguments"] == {"query": "wal", "limit": 2}


async def test_oauth_token_is_read_at_request_time(
    fake: tuple[FakeSnipara, str], tmp_path: Path
) -> None:
    server, url = fake
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": "tok-1"}))
    server.expected_auth = ("Authorization", "Bearer tok-1")
    async with SniparaProvider(project_slug=SLUG, base_url=url, tokens_file=tokens) as snipara:
        assert await snipara.read_lines(1, 1) == {"lines": [1]}
        tokens.write_text(json.dumps({SLUG: {"access_token": "tok-2"}}))  # refreshed elsewhere
        server.expected_auth = ("Authorization", "Bearer tok-2")
        assert await snipara.read_lines(2, 2) == {"lines": [2]}
        tokens.write_text("not json")
        with pytest.raises(ConfigError, match=r"tokens\.json"):
            await snipara.read_lines(1, 1)


async def test_a_non_snp_key_is_sent_as_bearer(fake: tuple[FakeSnipara, str]) -> None:
    server, url = fake
    server.expected_auth = ("Authorization", "Bearer oauth-abc")
    async with SniparaProvider(api_key="oauth-abc", project_slug=SLUG, base_url=url) as snipara:
        assert await snipara.read_lines(1, 2) == {"lines": [1, 2]}


async def test_errors_are_mapped(fake: tuple[FakeSnipara, str]) -> None:
    server, url = fake
    async with SniparaProvider(api_key="snp-wrong", project_slug=SLUG, base_url=url) as bad:
        with pytest.raises(ConfigError, match=r"rejected the credentials .*HTTP 401"):
            await bad.search("x")
    async with SniparaProvider(api_key=KEY, project_slug=SLUG, base_url=url) as snipara:
        server.rpc_error = {"code": -32000, "message": "quota exceeded"}
        with pytest.raises(RunError, match=r"refused rlm_search: quota exceeded \(code -32000\)"):
            await snipara.search_regex("x")
        server.rpc_error = None
        server.status = 503
        with pytest.raises(RunError, match="HTTP 503: upstream exploded"):
            await snipara.recall("x")
        with pytest.raises(ConfigError, match="empty"):
            await snipara.search("  ")


async def test_timeout_names_the_tool_and_the_limit() -> None:
    done = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await done.wait()
        writer.close()
        await writer.wait_closed()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with SniparaProvider(
            api_key=KEY, project_slug=SLUG, base_url=url, timeout_s=0.2
        ) as snipara:
            with pytest.raises(RunError, match=r"did not answer rlm_context_query within 0.2 s"):
                await snipara.search("x")
    finally:
        done.set()
        await asyncio.sleep(0.05)
        silent.close()
        await silent.wait_closed()


async def test_unreachable_server_is_a_run_error(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/mcp"
    async with SniparaProvider(api_key=KEY, project_slug=SLUG, base_url=url) as snipara:
        with pytest.raises(RunError, match="cannot reach Snipara"):
            await snipara.read_lines(1, 1)


def test_missing_configuration_names_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SNIPARA_API_KEY", raising=False)
    monkeypatch.delenv("SNIPARA_PROJECT_SLUG", raising=False)
    with pytest.raises(ConfigError, match="SNIPARA_PROJECT_SLUG and SNIPARA_API_KEY"):
        SniparaProvider(tokens_file=tmp_path / "none.json")
    monkeypatch.setenv("SNIPARA_API_KEY", KEY)
    monkeypatch.setenv("SNIPARA_PROJECT_SLUG", SLUG)
    monkeypatch.setenv("SNIPARA_BASE_URL", "http://127.0.0.1:9/mcp/")
    assert SniparaProvider().url == f"http://127.0.0.1:9/mcp/{SLUG}"


async def test_context_search_in_the_repl_uses_snipara(
    fake: tuple[FakeSnipara, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`context_provider = "snipara"`: code in a sandbox gets Snipara's sections."""
    from rlmrt.config import load_config
    from rlmrt.context.search import ContextSearch
    from rlmrt.engine.session import CodeSession

    server, url = fake
    monkeypatch.setenv("SNIPARA_API_KEY", KEY)
    monkeypatch.setenv("SNIPARA_PROJECT_SLUG", SLUG)
    monkeypatch.setenv("SNIPARA_BASE_URL", url)
    config = load_config(env={"RLM_CONTEXT__PROVIDER": "snipara"}, sandbox="local")
    searcher = ContextSearch(config)
    try:
        async with CodeSession(config, searcher=searcher) as session:
            result = await session.aexecute(
                "hits = context_search('budget', max_tokens=100)\n"
                "print(hits[0]['source'], hits[0]['start_line'], hits[0]['title'])"
            )
        assert result.error is None, result.error
        assert result.stdout == "docs/budget.md 10 Budgets\n"
        assert server.requests[0]["params"]["arguments"] == {"query": "budget", "max_tokens": 100}
    finally:
        await searcher.aclose()
