"""The server's own secrets kept out of what tenants read: a provider's error may quote
the provider key (a 401's "incorrect API key sk-..."), and a run's events, which
`/v1/runs/{id}/events` and `/trajectory` give its tenant, carry that error's text.
Each known secret (the profiles' API keys, the passwords of the server's URLs, the
values of key-like environment variables) is replaced by `REDACTED` before an event
is stored."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from rlmrt.config import RLMConfig

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter values would blank ordinary words
SECRET_NAME = re.compile(r"(API_KEY|APIKEY|TOKEN|SECRET|PASSWORD|ACCESS_KEY)", re.IGNORECASE)


def server_secrets(
    configs: Iterable[RLMConfig], environ: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The secrets of `configs` and of the environment, longest first (a secret that
    holds another is replaced whole)."""
    found: set[str] = set()
    for config in configs:
        found.add(config.api_key_value() or "")
        for url in (config.server.database_url, config.server.rate_limit_storage):
            try:
                found.add(urlsplit(url).password or "")
            except ValueError:
                continue
    env = os.environ if environ is None else environ
    found.update(value for name, value in env.items() if SECRET_NAME.search(name))
    usable = {secret for secret in found if len(secret) >= MIN_SECRET_CHARS}
    return tuple(sorted(usable, key=len, reverse=True))


def redacted(json_text: str, secrets: Iterable[str]) -> str:
    """`json_text` with each secret, as is or JSON-escaped, replaced."""
    for secret in secrets:
        json_text = json_text.replace(secret, REDACTED)
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret:
            json_text = json_text.replace(escaped, REDACTED)
    return json_text
