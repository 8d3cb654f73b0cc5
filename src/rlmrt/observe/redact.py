"""Known secrets kept out of what rlmrt writes down: a provider's error may quote the
API key it was given (a 401's "incorrect API key sk-..."), and the run's events carry
that error's text into trajectory files, the server's stored events, logs.

The secrets are the values rlmrt knows to be secret: the configured API keys (given by
the caller, see `engine.start`) and the values of key-like environment variables. Each
is replaced by `REDACTED` wherever it appears, as is or JSON-escaped."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter values would blank ordinary words
SECRET_NAME = re.compile(r"(API_KEY|APIKEY|TOKEN|SECRET|PASSWORD|ACCESS_KEY)", re.IGNORECASE)


def known_secrets(
    values: Iterable[str | None], environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """`values` and the environment's key-like variables' values, long enough to be
    told from ordinary text, longest first (a secret that holds another goes whole)."""
    env = os.environ if environ is None else environ
    found = {value for value in values if value}
    found.update(value for name, value in env.items() if SECRET_NAME.search(name))
    usable = {secret for secret in found if len(secret) >= MIN_SECRET_CHARS}
    return tuple(sorted(usable, key=len, reverse=True))


def redacted(json_text: str, secrets: Iterable[str]) -> str:
    """`json_text` with each secret, as is or JSON-escaped, replaced."""
    for secret in secrets:
        if secret in json_text:
            json_text = json_text.replace(secret, REDACTED)
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret and escaped in json_text:
            json_text = json_text.replace(escaped, REDACTED)
    return json_text
