"""Retries with backoff, and the mapping of client-library errors to `rlmrt.errors`.

Shared by every HTTP model client (LiteLLM raises the `openai` SDK's exception
classes; `OpenAICompatibleClient` raises aiohttp's and `HTTPStatusFailure`), so a
failure means the same thing whichever client met it:

| failure                                   | retried | raised after the last try |
|-------------------------------------------|---------|---------------------------|
| HTTP 408, 409, 429, 5xx                   | yes     | ModelError (status, body) |
| timeout, connection refused/reset/dropped | yes     | ModelConnectionError      |
| HTTP 401, 403, missing API key            | no      | ModelAuthError            |
| HTTP 404, model without a known provider  | no      | ModelNotFoundError        |
| body that is not valid JSON               | no      | ModelResponseError        |
| any other HTTP status (400, 422, ...)     | no      | ModelError (status, body) |

Waits grow exponentially with full jitter; a `Retry-After` (or `retry-after-ms`)
header sets the wait instead, capped by `RetryPolicy.max_retry_after_s`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from rlmrt.errors import (
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelResponseError,
)
from rlmrt.llm.base import ModelReply

T = TypeVar("T")
Kind = Literal["auth", "not_found", "no_provider", "timeout", "connection", "response", "status"]


class HTTPStatusFailure(Exception):
    """A reply with an HTTP status other than 200, as met by a client of our own."""

    def __init__(self, status: int, body: str, headers: Mapping[str, str]) -> None:
        self.status_code = status
        self.body = body
        self.headers = {k.lower(): v for k, v in headers.items()}
        super().__init__(f"HTTP {status}: {body[:200]}")


def library_errors() -> tuple[type[BaseException], ...]:
    """The errors a client library raises for a failed call; anything else is a bug
    and propagates unchanged. Libraries that are not imported cannot have raised."""
    errors: list[type[BaseException]] = [
        HTTPStatusFailure,
        json.JSONDecodeError,
        asyncio.TimeoutError,
        ConnectionError,
    ]
    for module, names in _LIBRARY_ERROR_NAMES.items():
        loaded = sys.modules.get(module)
        if loaded is not None:
            errors.extend(getattr(loaded, name) for name in names)
    return tuple(errors)


_LIBRARY_ERROR_NAMES = {
    "aiohttp": ("ClientError",),
    "openai": ("OpenAIError",),
    "httpx": ("HTTPError",),
}


def _library_types(module: str, *names: str) -> tuple[type[BaseException], ...]:
    loaded = sys.modules.get(module)
    if loaded is None:
        return ()
    return tuple(getattr(loaded, name) for name in names)


_RETRY_STATUSES = frozenset({408, 409, 429})
_MISSING_KEY = re.compile(
    r"missing credentials|api[_ ]?key[^.]*(must be set|not set|is missing|missing)"
    r"|missing [^.]*api[_ ]?key|no api[_ ]?key",
    re.IGNORECASE,
)
_NO_PROVIDER = "LLM Provider NOT provided"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how long to wait before trying a failed call again."""

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay_s(self, retry: int, retry_after_s: float | None) -> float:
        """The wait before retry number `retry` (0-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0**retry)
        jitter: float = random.uniform(0.5, 1.0)
        return jitter * ceiling


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What a call was aimed at, for error messages."""

    model: str
    where: str  # e.g. "the model server at http://127.0.0.1:8000/v1" or "provider 'openai'"
    key_hint: str | Callable[[], str]  # e.g. "Set OPENAI_API_KEY (or RLM_LLM__API_KEY), or ..."
    timeout_s: float

    def key_help(self) -> str:
        return self.key_hint() if callable(self.key_hint) else self.key_hint


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Kind
    detail: str
    status: int | None = None
    body: str | None = None
    retry_after_s: float | None = None

    @property
    def retryable(self) -> bool:
        if self.kind in ("timeout", "connection"):
            return True
        return (
            self.kind == "status"
            and self.status is not None
            and (self.status in _RETRY_STATUSES or self.status >= 500)
        )

    def to_error(self, target: Target, attempts: int) -> ModelError:
        cls, message = self._describe(
            target, f" (after {attempts} attempts)" if attempts > 1 else ""
        )
        return cls(message, status=self.status, body=self.body, attempts=attempts)

    def _describe(self, target: Target, after: str) -> tuple[type[ModelError], str]:
        model, where = target.model, target.where
        if self.kind == "auth":
            return ModelAuthError, (
                f"the API key for model {model!r} is missing or was rejected by {where}: "
                f"{self.detail}. {target.key_help()}"
            )
        if self.kind == "no_provider":
            return ModelNotFoundError, (
                f"model {model!r} names no provider LiteLLM knows; "
                "use 'provider/model', e.g. 'openai/gpt-4o-mini'"
            )
        if self.kind == "not_found":
            return ModelNotFoundError, f"{where} does not know model {model!r}: {self.detail}"
        if self.kind == "timeout":
            return ModelConnectionError, (
                f"{where} did not answer within {target.timeout_s:g} s{after}"
            )
        if self.kind == "connection":
            return ModelConnectionError, f"could not reach {where}{after}: {self.detail}"
        if self.kind == "response":
            return ModelResponseError, (
                f"{where} sent a reply that could not be understood: {self.detail}"
            )
        return ModelError, (
            f"{where} answered HTTP {self.status} for model {model!r}{after}: {self.detail}"
        )


async def with_retries(
    call: Callable[[], Awaitable[T]], *, policy: RetryPolicy, target: Target
) -> T:
    """Run `call`, retrying transient failures; raise them as `ModelError` subclasses.

    A `ModelError` raised by `call` itself (e.g. a stream cut off after text was
    already handed out) is final and passes through unchanged. A `ModelReply` got
    after retries says how many requests it took (`attempts`).
    """
    retry = 0
    while True:
        try:
            result = await call()
        except library_errors() as exc:
            failure = classify(exc)
            if not failure.retryable or retry >= policy.max_retries:
                raise failure.to_error(target, retry + 1) from exc
            await asyncio.sleep(policy.delay_s(retry, failure.retry_after_s))
            retry += 1
            continue
        if retry and isinstance(result, ModelReply):
            return dataclasses.replace(result, attempts=retry + 1)
        return result


def classify(exc: BaseException) -> Failure:
    """Decide what a client-library exception means (see the table above)."""
    chain = list(_chain(exc))
    messages = " | ".join(str(e) for e in chain)
    status = _status(chain)
    body = _body(chain)
    if _NO_PROVIDER in messages:
        return Failure("no_provider", _NO_PROVIDER, status, body)
    if status in (401, 403) or _MISSING_KEY.search(messages):
        return Failure("auth", _detail(chain), status, body)
    response_errors: tuple[type[BaseException], ...] = (
        json.JSONDecodeError,
        *_library_types("openai", "APIResponseValidationError"),
        *_library_types("aiohttp", "ContentTypeError"),
    )
    timeout_errors: tuple[type[BaseException], ...] = (
        TimeoutError,
        asyncio.TimeoutError,
        *_library_types("openai", "APITimeoutError"),
        *_library_types("httpx", "TimeoutException"),
        *_library_types("aiohttp", "ServerTimeoutError"),
    )
    connection_errors: tuple[type[BaseException], ...] = (
        ConnectionError,
        *_library_types("openai", "APIConnectionError"),
        *_library_types("httpx", "TransportError"),
        *_library_types("aiohttp", "ClientConnectionError", "ClientPayloadError"),
    )
    for e in chain:
        if isinstance(e, response_errors):
            return Failure("response", f"{type(e).__name__}: {e}", status, body)
    for e in chain:
        if isinstance(e, timeout_errors):
            return Failure("timeout", _innermost(chain), None, None)
    for e in chain:
        if isinstance(e, connection_errors):
            return Failure("connection", _innermost(chain), None, None)
    if status == 404:
        return Failure("not_found", _detail(chain), status, body)
    return Failure("status", _detail(chain), status, body, _retry_after_s(chain))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(chain: list[BaseException]) -> int | None:
    for e in chain:
        status = getattr(e, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _responses(chain: list[BaseException]) -> Iterator[Any]:
    """httpx responses carried by the exceptions (LiteLLM / OpenAI SDK errors)."""
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return
    for e in chain:
        response = getattr(e, "response", None)
        if isinstance(response, httpx.Response):
            yield response


def _body(chain: list[BaseException]) -> str | None:
    for e in chain:
        if isinstance(e, HTTPStatusFailure) and e.body:
            return e.body
    for response in _responses(chain):
        try:
            text = response.text
        except sys.modules["httpx"].ResponseNotRead:
            continue
        if text:
            return str(text)
    return None


def _detail(chain: list[BaseException]) -> str:
    """The provider's own error message when it sent one, else the exception text."""
    body = _body(chain)
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return body[:500]
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message
    return str(chain[0])[:500]


def _innermost(chain: list[BaseException]) -> str:
    """The root cause, e.g. "ConnectionRefusedError: [Errno 111] ..."."""
    for e in reversed(chain):
        if str(e):
            return f"{type(e).__name__}: {e}"[:500]
    return type(chain[-1]).__name__


def _retry_after_s(chain: list[BaseException]) -> float | None:
    headers = [e.headers for e in chain if isinstance(e, HTTPStatusFailure)]
    headers += [r.headers for r in _responses(chain)]
    for header in headers:
        millis = _float(header.get("retry-after-ms"))
        if millis is not None:
            return millis / 1000
        value = header.get("retry-after")
        seconds = _float(value)
        if seconds is not None:
            return seconds
        if value:
            try:
                return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
    return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
