"""`context_search()` in the REPL: every sandbox kind, the host checks, whole runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from rlmrt.config import config_with, load_config
from rlmrt.context import PROVIDERS
from rlmrt.context.local_index import LocalIndex
from rlmrt.context.search import NOT_CONFIGURED, ContextSearch, check_search_args, open_provider
from rlmrt.engine.bridge import RunBridge
from rlmrt.engine.prompts import CONTEXT_SEARCH_LINE
from rlmrt.engine.session import NO_RUN
from rlmrt.engine.shared import SessionHost
from rlmrt.errors import ConfigError, MissingDependencyError, RLMError
from rlmrt.events import CodeExecuted
from rlmrt.observe.trajectory import read_events
from rlmrt.sandbox.facade import SANDBOXES, create_backend
from rlmrt.testing import scripted

# every registered sandbox kind; the container and WebAssembly ones are slow to start.
# "remote" needs a sandbox host and "kubernetes" this machine's cluster: tests/sandbox
# runs their host functions against those (test_host_functions)
KINDS = [
    pytest.param(kind, marks=[] if kind in ("local", "process") else [pytest.mark.slow])
    for kind in SANDBOXES.names()
    if kind not in ("remote", "kubernetes")
]


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def make_corpus(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "retries.md").write_text(
        "# Retries\nThe client retries a failed call three times with jittered backoff.\n"
    )
    (root / "docs" / "budget.md").write_text("# Budgets\nA budget limits the tokens of a run.\n")
    (root / "notes.txt").write_text("groceries: apples, pears\n")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_corpus(tmp_path / "corpus")


def local_config(corpus: Path, tmp_path: Path, **more: Any) -> Any:
    return load_config(
        context_provider="local",
        context_root=corpus,
        context_index=tmp_path / "ix.sqlite",
        **more,
    )


async def test_search_returns_plain_dicts_within_the_budget(corpus: Path, tmp_path: Path) -> None:
    searcher = ContextSearch(local_config(corpus, tmp_path))
    try:
        hits = await searcher.search("jittered backoff retries", 200)
        assert hits[0]["source"] == "docs/retries.md"
        assert set(hits[0]) == {
            "source",
            "start_line",
            "end_line",
            "title",
            "text",
            "score",
            "tokens",
        }
        assert "three times" in hits[0]["text"]
        assert sum(h["tokens"] for h in hits) <= 200
        json.dumps(hits)  # plain data all the way down
        # a file added later is found: the index is refreshed when first opened
        (corpus / "late.md").write_text("# Late\nzebra crossing\n")
        fresh = ContextSearch(local_config(corpus, tmp_path))
        try:
            assert (await fresh.search("zebra"))[0]["source"] == "late.md"
        finally:
            await fresh.aclose()
    finally:
        await searcher.aclose()
        await searcher.aclose()  # twice is fine


@pytest.mark.parametrize(
    ("query", "budget", "message"),
    [
        ("", 10, "query must be a non-empty string"),
        (3, 10, "query must be a non-empty string"),
        ("x", "10", "max_tokens must be an int, got str"),
        ("x", True, "max_tokens must be an int, got bool"),
        ("x", 0, "max_tokens must be between 1 and"),
        ("x", 10**9, "max_tokens must be between 1 and"),
    ],
)
def test_host_checks_the_arguments(query: Any, budget: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_search_args(query, budget)


async def test_unconfigured_search_says_how_to_configure() -> None:
    searcher = ContextSearch(load_config())
    assert searcher.enabled is False
    with pytest.raises(ConfigError, match="no context provider is configured"):
        await searcher.search("x")


def test_provider_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"unknown context provider 'locl'.*Did you mean 'local'"):
        load_config(context_provider="locl")
    assert load_config(context_provider="none").context.provider is None
    assert load_config(env={"RLM_CONTEXT__PROVIDER": "snipara"}).context.provider == "snipara"


async def test_snipara_provider_is_opened_from_the_settings(monkeypatch) -> None:
    monkeypatch.delenv("SNIPARA_API_KEY", raising=False)
    monkeypatch.delenv("SNIPARA_PROJECT_SLUG", raising=False)
    searcher = ContextSearch(load_config(context_provider="snipara"))
    with pytest.raises(ConfigError, match="Snipara is not configured"):
        await searcher.search("x")


@pytest.mark.parametrize("name", PROVIDERS.names())
def test_every_registered_provider_is_built_from_the_settings(
    name: str, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNIPARA_API_KEY", "snp-test")
    monkeypatch.setenv("SNIPARA_PROJECT_SLUG", "proj")
    config = config_with(local_config(corpus, tmp_path), context_provider=name)
    provider = open_provider(config)
    assert type(provider) is PROVIDERS.load(name)
    if provider.refreshable:
        provider.refresh()
    else:
        with pytest.raises(NotImplementedError, match=f"{type(provider).__name__} has nothing"):
            provider.refresh()
    asyncio.run(provider.aclose())


def test_the_local_index_is_built_where_the_settings_say(corpus: Path, tmp_path: Path) -> None:
    provider = open_provider(local_config(corpus, tmp_path))
    assert isinstance(provider, LocalIndex) and provider.refreshable
    assert (provider.root, provider.index_path) == (corpus.resolve(), tmp_path / "ix.sqlite")
    provider.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_context_search_in_every_sandbox_kind(
    kind: str, corpus: Path, tmp_path: Path
) -> None:
    searcher = ContextSearch(local_config(corpus, tmp_path))
    # a session's host between runs: context_search without a model run
    backend = create_backend(kind, bridge=SessionHost(searcher, NO_RUN))
    try:
        try:
            await backend.start()
        except MissingDependencyError as exc:  # as the contract suite: a missing extra
            pytest.skip(f"the {kind} sandbox cannot start here: {exc}")
        result = await backend.execute(
            "hits = context_search('jittered backoff', max_tokens=300)\n"
            "print(isinstance(hits, list), isinstance(hits[0], dict))\n"
            "print(hits[0]['source'], hits[0]['start_line'], hits[0]['end_line'])"
        )
        assert result.error is None, result.error
        assert result.stdout.splitlines() == ["True True", "docs/retries.md 1 2"]
        # bad arguments fail in the sandbox, as the code's own error
        for code, message in [
            ("context_search(5)", "query must be a str"),
            ("context_search('x', max_tokens='a')", "max_tokens must be an int"),
            ("context_search('x', max_tokens=0)", "max_tokens must be >= 1"),
            ("context_search('   ')", "query must be a non-empty string"),
        ]:
            failed = await backend.execute(code)
            assert failed.error is not None and message in failed.error, (code, failed.error)
        # the name is the REPL's: code cannot replace it through set_variable
        with pytest.raises(RLMError, match="reserved"):
            await backend.set_variable("context_search", 1)
    finally:
        await backend.aclose()
        await searcher.aclose()


@pytest.mark.parametrize("kind", ["local", "process"])
async def test_without_provider_the_code_gets_a_clear_error(kind: str) -> None:
    backend = create_backend(kind, bridge=RunBridge(None))
    try:
        await backend.start()
        result = await backend.execute("context_search('x')")
        assert result.error is not None and "no run is in progress" in result.error
    finally:
        await backend.aclose()
    plain = create_backend(kind)
    try:
        await plain.start()
        result = await plain.execute("context_search('x')")
        assert result.error is not None and "only available inside an RLM run" in result.error
    finally:
        await plain.aclose()


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_run_searches_an_indexed_folder(
    kind: str, serve, make_rlm, corpus: Path, tmp_path: Path
) -> None:
    handler = scripted(
        root=[
            repl(
                "hits = context_search('how often does the client retry?', max_tokens=400)\n"
                "print(hits[0]['source'], '|', hits[0]['text'])"
            ),
            repl("FINAL(hits[0]['source'])"),
        ]
    )
    server = serve(handler)
    rlm = make_rlm(
        server,
        sandbox=kind,
        context_provider="local",
        context_root=corpus,
        context_index=tmp_path / "ix.sqlite",
    )
    try:
        result = rlm.completion("How often are calls retried?", context="(see the project files)")
    except MissingDependencyError as exc:  # as the contract suite: a missing extra
        pytest.skip(f"the {kind} sandbox cannot start here: {exc}")
    assert result.answer == "docs/retries.md"
    root_requests = [r for r in server.requests if r.is_rlm_root]
    assert CONTEXT_SEARCH_LINE in root_requests[0].messages[0]["content"]
    assert "three times" in root_requests[1].messages[-1]["content"]
    assert result.trajectory_path is not None
    executed = [e for e in read_events(result.trajectory_path) if isinstance(e, CodeExecuted)]
    assert executed[0].error is None


def test_without_provider_the_prompt_does_not_list_it_and_the_run_sees_why(serve, make_rlm) -> None:
    handler = scripted(root=[repl("context_search('x')"), repl("FINAL('done')")])
    server = serve(handler)
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "done"
    root_requests = [r for r in server.requests if r.is_rlm_root]
    assert "context_search" not in root_requests[0].messages[0]["content"]
    assert NOT_CONFIGURED in root_requests[1].messages[-1]["content"]


def test_sub_runs_share_the_searcher(serve, make_rlm, corpus: Path, tmp_path: Path) -> None:
    def handler(request):
        text = request.messages[1]["content"]
        if "Question: inner" in text:
            if any(m["role"] == "assistant" for m in request.messages):
                return repl("FINAL(found)")
            return repl("found = context_search('budget tokens')[0]['source']\nprint(found)")
        if any(m["role"] == "assistant" for m in request.messages):
            return repl("FINAL(inner)")
        return repl("inner = rlm_query('inner', context='x')\nprint(inner)")

    server = serve(handler)
    rlm = make_rlm(
        server,
        max_depth=1,
        context_provider="local",
        context_root=corpus,
        context_index=tmp_path / "ix.sqlite",
    )
    assert rlm.completion("outer", context="c").answer == "docs/budget.md"


async def test_a_damaged_index_is_closed_and_named(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "ix.sqlite").write_bytes(b"not a database" * 100)
    searcher = ContextSearch(local_config(corpus, tmp_path))
    with pytest.raises(ConfigError, match="damaged"):
        await searcher.search("retries")
    await searcher.aclose()
