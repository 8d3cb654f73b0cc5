"""Compaction of the root conversation when it nears the model's context window."""

from __future__ import annotations

import pytest
from scripting import repl

from rlmrt.config import RLMConfig
from rlmrt.engine.prompts import COMPACT_PROMPT, COMPACTED_NOTE
from rlmrt.engine.tree import _litellm_window
from rlmrt.events import Compacted, Event, ModelCallStarted
from rlmrt.testing import Reply, scripted


def test_a_full_window_restarts_the_conversation_from_a_summary(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[
                Reply(repl("x = 41\nprint('kept')"), prompt_tokens=280),
                "x holds 41; next: add one.",  # the summary
                repl("FINAL(f'{x + 1}:{len(conversation_log)}')"),
            ]
        )
    )
    events: list[Event] = []
    rlm = make_rlm(server, context_window_tokens=300)  # compact_at 0.8: from 240 tokens
    rlm.subscribe(events.append)
    result = rlm.completion("what is x + 1?", context="ctx")

    assert result.answer == "42:4"  # the REPL kept x; the log holds the 4 earlier messages
    assert result.stop_reason == "final" and result.iterations == 2
    first, compact, restarted = server.requests
    assert compact.messages[-1] == {"role": "user", "content": COMPACT_PROMPT}
    assert len(compact.messages) == 5
    assert restarted.messages == [
        first.messages[0],
        first.messages[1],
        {"role": "assistant", "content": "x holds 41; next: add one."},
        {"role": "user", "content": COMPACTED_NOTE},
    ]
    compacted = [e for e in events if isinstance(e, Compacted)]
    assert len(compacted) == 1
    assert compacted[0].tokens_before == 280 and compacted[0].window_tokens == 300
    assert compacted[0].messages_before == 4
    assert compacted[0].summary_chars == len("x holds 41; next: add one.")
    purposes = [e.purpose for e in events if isinstance(e, ModelCallStarted)]
    assert purposes == ["root", "compact", "root"]


def test_below_the_threshold_nothing_is_compacted(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(repl("x = 1"), prompt_tokens=200), "FINAL(done)"]))
    result = make_rlm(server, context_window_tokens=300).completion("q", context="c")
    assert result.answer == "done"
    assert len(server.requests) == 2


def test_the_fast_path_never_asks_litellm(serve, make_rlm, monkeypatch) -> None:
    def forbidden() -> None:
        raise AssertionError("LiteLLM was imported for an OpenAI-compatible server")

    monkeypatch.setattr("rlmrt.llm._litellm.import_litellm", forbidden)
    server = serve(scripted(root=[Reply(repl("x = 1"), prompt_tokens=10**6), "FINAL(done)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "done"
    assert len(server.requests) == 2  # no window known: no compaction


def test_litellm_knows_the_window_of_models_it_knows() -> None:
    window = _litellm_window(RLMConfig(model="gpt-4o-mini"))
    assert window is not None and window > 10_000
    assert _litellm_window(RLMConfig(model="nobody/knows-this-model")) is None
    assert _litellm_window(RLMConfig(model="openai/x", api_base="http://127.0.0.1:1")) is None


def test_compact_at_is_validated() -> None:
    from rlmrt.config import load_config
    from rlmrt.errors import ConfigError

    with pytest.raises(ConfigError, match="compact_at"):
        load_config(compact_at=1.5, search=False)
