"""The server's secrets found and replaced in event JSON (`rlmrt.server.redact`)."""

from __future__ import annotations

import json

from rlmrt.config import RLMConfig
from rlmrt.server.redact import REDACTED, redacted, server_secrets


def test_secrets_of_the_settings_and_the_environment() -> None:
    config = RLMConfig(
        llm={"model": "openai/x", "api_key": "sk-settings-0123456789"},
        server={
            "database_url": "postgresql+asyncpg://rlm:db-pass-0123@db/rlm",
            "rate_limit_storage": "redis://:redis-pass-0123@cache:6379",
        },
    )
    environ = {
        "OPENAI_API_KEY": "sk-env-0123456789",
        "GITHUB_TOKEN": "ghp_0123456789",
        "SHORT_SECRET": "abc",  # too short to blank safely
        "HOME": "/home/someone-long-enough",  # not a secret's name
    }
    found = server_secrets([config], environ)
    assert set(found) == {
        "sk-settings-0123456789",
        "db-pass-0123",
        "redis-pass-0123",
        "sk-env-0123456789",
        "ghp_0123456789",
    }
    assert [len(s) for s in found] == sorted((len(s) for s in found), reverse=True)


def test_a_secret_is_replaced_as_is_and_json_escaped() -> None:
    secret = 'pa"ss\\word-0123'
    text = json.dumps({"message": f"bad key {secret}", "other": "sk-abcdefgh1234"})
    cleaned = redacted(text, [secret, "sk-abcdefgh1234"])
    assert json.loads(cleaned) == {"message": f"bad key {REDACTED}", "other": REDACTED}
