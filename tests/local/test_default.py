"""When runs use the local model, and what they say when it is not ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmrt import RLM
from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError
from rlmrt.local import server as local_server
from rlmrt.local.default import local_default_reason


def test_a_configured_model_or_any_key_means_no_local_model() -> None:
    bare = RLMConfig()
    assert local_default_reason(bare, env={}) == (
        "no model configured and no provider API key in the environment"
    )
    assert local_default_reason(RLMConfig(model="openai/gpt-4o"), env={}) is None
    assert local_default_reason(bare, env={"ANTHROPIC_API_KEY": "sk"}) is None
    assert local_default_reason(bare, env={"ANTHROPIC_API_KEY": ""}) is not None
    assert local_default_reason(RLMConfig(api_key="k"), env={}) is None


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmrt.llm.provider_keys import PROVIDER_KEYS

    for names in PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RLM_LLM__MODEL", raising=False)


def test_rlm_without_a_model_asks_for_the_local_model_pieces(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_keys(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no rlm.toml
    monkeypatch.setattr(local_server, "llama_server_installed", lambda: True)
    with pytest.raises(
        ConfigError, match=r"not downloaded: run `rlm model pull qwen2.5-coder-1.5b`"
    ):
        RLM()
    monkeypatch.setattr(local_server, "llama_server_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'rlmrt\[local\]'"):
        RLM()
