"""`tools.http_get(url)`: fetch a URL over HTTP(S); its text, status and type.

It declares a need of the network, so a run offers it only where settings grant
``[tools.grants] network = true`` (or ``[tools.http_get] network = true``).
"""

from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from rlmrt.tools import tool

__all__ = ["http_get"]

__version__ = "1.0.0"

_READ_CAP = 10_000_000


@tool(version=__version__, network=True)
async def http_get(
    url: str,
    max_bytes: Annotated[int, Field(ge=1, le=_READ_CAP)] = 100_000,
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0,
) -> dict[str, Any]:
    """GET a URL; returns its status, content type and text (cut at max_bytes).

    Args:
        url: an http:// or https:// URL
        max_bytes: at most this many bytes of the body; `truncated` says if it went on
        timeout_s: seconds to wait for the server
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"argument 'url': {url!r} is not an http:// or https:// URL")
    body = bytearray()
    truncated = False
    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, timeout=timeout_s, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    truncated = True
                    break
    except httpx.InvalidURL as exc:
        raise ValueError(f"argument 'url': {exc}") from None
    except httpx.HTTPError as exc:
        raise ConnectionError(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    return {
        "url": str(response.url),
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "text": bytes(body[:max_bytes]).decode(response.encoding or "utf-8", "replace"),
        "truncated": truncated,
    }
