"""A client for Snipara's hosted context API (JSON-RPC 2.0 `tools/call` over HTTP).

Written from the documented facts in /work/shared/snipara-api.md and tested against
a local server that follows them (tests/context/test_snipara_contract.py). This is a
contract test: the real service is not reachable from our machines, so anything the
documentation does not say is an assumption, marked below.

Configuration: `SNIPARA_API_KEY`, `SNIPARA_PROJECT_SLUG` and optionally
`SNIPARA_BASE_URL` (default https://api.snipara.com/mcp), or the same as arguments.
A key starting with `snp-` is sent as `x-api-key`; any other key as an OAuth bearer
token. Without a key, the OAuth access token is read from `~/.snipara/tokens.json`
at every request, because Snipara's login tool may refresh it meanwhile.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmrt.context.base import ContextHit, ContextProvider, estimate_tokens
from rlmrt.errors import ConfigError, RunError

if TYPE_CHECKING:
    import httpx

    from rlmrt.config import RLMConfig

DEFAULT_BASE_URL = "https://api.snipara.com/mcp"
API_KEY_PREFIX = "snp-"


def default_tokens_file() -> Path:
    return Path.home() / ".snipara" / "tokens.json"


class SniparaProvider(ContextProvider):
    """Snipara's `rlm_context_query` as a context provider, plus its other tools."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        project_slug: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        tokens_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.api_key = api_key or os.environ.get("SNIPARA_API_KEY") or None
        self.project_slug = project_slug or os.environ.get("SNIPARA_PROJECT_SLUG") or None
        base = base_url or os.environ.get("SNIPARA_BASE_URL") or DEFAULT_BASE_URL
        self.tokens_file = Path(tokens_file) if tokens_file else default_tokens_file()
        missing = []
        if not self.project_slug:
            missing.append("SNIPARA_PROJECT_SLUG")
        if not self.api_key and not self.tokens_file.is_file():
            missing.append(f"SNIPARA_API_KEY (or an OAuth login in {self.tokens_file})")
        if missing:
            raise ConfigError(f"Snipara is not configured: set {' and '.join(missing)}")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        self.url = f"{base.rstrip('/')}/{self.project_slug}"
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_config(cls, config: RLMConfig) -> SniparaProvider:
        """Snipara as its environment variables (or an OAuth login) configure it."""
        return cls()

    # -- transport -------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if self.api_key:
            if self.api_key.startswith(API_KEY_PREFIX):
                return {"x-api-key": self.api_key}
            return {"Authorization": f"Bearer {self.api_key}"}
        return {"Authorization": f"Bearer {self._read_token()}"}

    def _read_token(self) -> str:
        # Assumption: the file holds {"access_token": ...}, either at the top level
        # or under the project slug; the documentation does not give its layout.
        try:
            data = json.loads(self.tokens_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the Snipara OAuth token from {self.tokens_file}: {exc};"
                " log in again or set SNIPARA_API_KEY"
            ) from exc
        for entry in (data, data.get(self.project_slug or "") if isinstance(data, dict) else None):
            if isinstance(entry, dict) and isinstance(entry.get("access_token"), str):
                return str(entry["access_token"])
        raise ConfigError(
            f"no access_token in {self.tokens_file}; log in again or set SNIPARA_API_KEY"
        )

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call one Snipara tool; `None` arguments are left out. Returns the parsed
        JSON of the first text block (or the text itself when it is not JSON)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        body = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": "tools/call",
            "params": {
                "name": tool,
                "arguments": {k: v for k, v in arguments.items() if v is not None},
            },
        }
        headers = {"Content-Type": "application/json", **self._auth_headers()}
        try:
            response = await self._client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RunError(
                f"Snipara did not answer {tool} within {self.timeout_s:g} s ({self.url})"
            ) from exc
        except httpx.HTTPError as exc:
            raise RunError(f"cannot reach Snipara at {self.url} for {tool}: {exc}") from exc
        if response.status_code in (401, 403):
            raise ConfigError(
                f"Snipara rejected the credentials for {tool} (HTTP {response.status_code});"
                " check SNIPARA_API_KEY or log in again"
            )
        if response.status_code >= 400:
            raise RunError(
                f"Snipara answered {tool} with HTTP {response.status_code}: {response.text[:300]}"
            )
        return _unwrap(tool, response)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- tools -----------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        max_tokens: int = 2000,
        limit: int | None = None,
        search_mode: str | None = None,
        prefer_summaries: bool | None = None,
        include_metadata: bool | None = None,
    ) -> list[ContextHit]:
        """`rlm_context_query`: the most relevant sections within `max_tokens`."""
        if not query.strip():
            raise ConfigError("the search query is empty")
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        result = await self.call(
            "rlm_context_query",
            {
                "query": query,
                # Snipara accepts 100..100000; the budget is enforced again below.
                "max_tokens": min(max(max_tokens, 100), 100_000),
                "search_mode": search_mode,
                "prefer_summaries": prefer_summaries,
                "include_metadata": include_metadata,
            },
        )
        hits: list[ContextHit] = []
        used = 0
        for section in _sections(result):
            hit = _to_hit(section)
            if used + hit.tokens > max_tokens or (limit is not None and len(hits) >= limit):
                break
            hits.append(hit)
            used += hit.tokens
        return hits

    async def search_regex(self, pattern: str, *, max_results: int | None = None) -> Any:
        """`rlm_search`: lines matching a regular expression."""
        return await self.call("rlm_search", {"pattern": pattern, "max_results": max_results})

    async def sections(
        self, *, filter: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> Any:
        """`rlm_sections`: the section list, optionally by title prefix."""
        return await self.call("rlm_sections", {"filter": filter, "limit": limit, "offset": offset})

    async def read_lines(self, start_line: int, end_line: int) -> Any:
        """`rlm_read`: lines start_line..end_line."""
        return await self.call("rlm_read", {"start_line": start_line, "end_line": end_line})

    async def remember(
        self,
        content: str,
        *,
        type: str | None = None,
        scope: str | None = None,
        category: str | None = None,
        ttl_days: int | None = None,
        related_to: list[str] | None = None,
        document_refs: list[str] | None = None,
    ) -> Any:
        """`rlm_remember`: store a memory."""
        return await self.call(
            "rlm_remember",
            {
                "content": content,
                "type": type,
                "scope": scope,
                "category": category,
                "ttl_days": ttl_days,
                "related_to": related_to,
                "document_refs": document_refs,
            },
        )

    async def recall(
        self,
        query: str,
        *,
        limit: int | None = None,
        min_relevance: float | None = None,
        type: str | None = None,
        scope: str | None = None,
        category: str | None = None,
    ) -> Any:
        """`rlm_recall`: memories relevant to `query`."""
        return await self.call(
            "rlm_recall",
            {
                "query": query,
                "limit": limit,
                "min_relevance": min_relevance,
                "type": type,
                "scope": scope,
                "category": category,
            },
        )


def _unwrap(tool: str, response: httpx.Response) -> Any:
    try:
        reply = response.json()
    except ValueError as exc:
        raise RunError(f"Snipara sent a reply to {tool} that is not JSON") from exc
    if not isinstance(reply, dict):
        raise RunError(f"Snipara sent a reply to {tool} that is not a JSON-RPC object")
    error = reply.get("error")
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        code = f" (code {error['code']})" if isinstance(error, dict) and "code" in error else ""
        raise RunError(f"Snipara refused {tool}: {message}{code}")
    result = reply.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        raise RunError(f"Snipara's reply to {tool} has no content blocks")
    text = content[0].get("text")
    if not isinstance(text, str):
        raise RunError(f"Snipara's reply to {tool} does not start with a text block")
    if isinstance(result, dict) and result.get("isError"):
        raise RunError(f"Snipara's {tool} failed: {text[:300]}")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _sections(result: Any) -> list[dict[str, Any]]:
    # Assumption: the sections come as a list, bare or under "sections"/"results".
    if isinstance(result, dict):
        result = result.get("sections", result.get("results", []))
    if not isinstance(result, list):
        raise RunError("Snipara's rlm_context_query reply has no list of sections")
    return [s for s in result if isinstance(s, dict)]


def _to_hit(section: dict[str, Any]) -> ContextHit:
    # Assumption: field names as below; missing ones get neutral values.
    text = str(section.get("content", section.get("text", "")))
    lines = section.get("lines")
    start: Any = section.get("start_line", lines[0] if isinstance(lines, list) and lines else 0)
    end: Any = section.get("end_line", lines[-1] if isinstance(lines, list) and lines else start)
    tokens = section.get("token_count", section.get("tokens"))
    return ContextHit(
        source=str(section.get("file", section.get("source", section.get("path", "")))),
        start_line=int(start or 0),
        end_line=int(end or 0),
        title=str(section.get("title", "")),
        text=text,
        score=float(section.get("relevance_score", section.get("score", 0.0))),
        tokens=int(tokens) if isinstance(tokens, int) else estimate_tokens(text),
    )
