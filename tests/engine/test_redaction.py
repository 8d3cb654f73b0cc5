"""Known secrets never reach a trajectory file: the API key a provider's error quotes,
and the values of key-like environment variables, whatever text carries them."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripting import repl

from rlmrt import RLM
from rlmrt.errors import ModelError
from rlmrt.observe.redact import REDACTED, known_secrets
from rlmrt.testing import ChatRequest, Reply, scripted

API_KEY = "sk-test-9f8e7d6c5b4a"
ENV_TOKEN = "tok-ENV-1234567890"


def test_a_provider_error_quoting_the_key_is_written_redacted(serve, tmp_path: Path) -> None:
    def model(request: ChatRequest) -> Reply | str:
        if request.is_rlm_root and len(request.messages) > 2:
            return Reply(status=401, error_body={"error": {"message": f"bad key {API_KEY}"}})
        return repl("print('working')")

    server = serve(model)
    rlm = RLM(
        model="openai/test-model",
        api_base=server.url,
        api_key=API_KEY,
        max_retries=0,
        trajectory_dir=tmp_path / "runs",
    )
    runs = rlm.config.trajectory.dir
    with pytest.raises(ModelError):
        rlm.completion("q", context="c")
    rlm.close()
    text = "".join(path.read_text() for path in runs.glob("*.jsonl"))
    assert "working" in text  # the run was recorded
    assert API_KEY not in text
    assert f"bad key {REDACTED}" in text


def test_an_environment_secret_in_a_reply_is_written_redacted(
    serve, make_rlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", ENV_TOKEN)
    server = serve(scripted(root=[repl(f"x = '{ENV_TOKEN}'\nprint(x)"), "FINAL(done)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.trajectory_path is not None
    text = result.trajectory_path.read_text()
    assert ENV_TOKEN not in text and REDACTED in text


def test_known_secrets_are_long_enough_and_longest_first() -> None:
    env = {"A_TOKEN": "short", "B_API_KEY": "k" * 20, "HOME": "/root/not-a-secret"}
    assert known_secrets(["sk-" + "x" * 30, None, ""], env) == ("sk-" + "x" * 30, "k" * 20)
