"""The server's own secrets kept out of what tenants read: a run's events, which
`/v1/runs/{id}/events` and `/trajectory` give its tenant, may carry a provider error
quoting the provider key. Beyond what every trajectory keeps out (the API keys and
key-like environment variables: `observe.redact`), the passwords of the server's URLs."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from rlmrt.config import RLMConfig
from rlmrt.observe.redact import REDACTED, known_secrets, redacted

__all__ = ["REDACTED", "redacted", "server_secrets"]


def server_secrets(
    configs: Iterable[RLMConfig], environ: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The secrets of `configs` and of the environment, longest first."""
    found: list[str | None] = []
    for config in configs:
        found.append(config.api_key_value())
        for url in (config.server.database_url, config.server.rate_limit_storage):
            try:
                found.append(urlsplit(url).password)
            except ValueError:
                continue
    return known_secrets(found, environ)
