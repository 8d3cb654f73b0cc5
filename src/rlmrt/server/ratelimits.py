"""Rate limits of keys and tenants, with the `limits` package: requests per minute (a
moving window: never more than N in any 60 s), model tokens per minute (a fixed window,
charged with each run's usage when it ends, checked before the next starts) and runs
at the same time (a counter taken at the start and given back at the end).

Each key, and each bearer token's subject, has the `[server] key_*` limits; all the
keys of a tenant together have the tenant's own limits (`rlm tenants set`) or the
`[server] tenant_*` defaults; 0 is no limit. The counters live in `[server]
rate_limit_storage` (a `limits` storage URI): `memory://` holds them in this process; a
shared storage (`redis://...`) holds them for several replicas.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from rlmrt.config import ServerSettings, masked_url
from rlmrt.errors import ConfigError
from rlmrt.server.models import Tenant

if TYPE_CHECKING:
    from rlmrt.server.auth import Caller

log = logging.getLogger("rlmrt.server")
CONCURRENT_EXPIRY_S = 3600  # a run counter a crashed replica left behind ends by then
RUN_SLOT_RETRY_S = 1


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose counters: one key (named by its visible prefix) or one tenant."""

    kind: str  # "key" or "tenant"
    id: str
    name: str  # "key rlm-Ab3dE9xQ..." or "tenant acme"
    requests_per_minute: int
    tokens_per_minute: int
    max_concurrent: int
    daily_usd: float = 0.0  # USD per UTC day (see `budgets`)


class RateLimited(Exception):
    """A request over one of its limits: which, and when to try again."""

    def __init__(self, scope: Scope, what: str, limit: int, retry_after_s: int) -> None:
        self.scope = scope
        self.what = what
        self.limit = limit
        self.retry_after_s = max(1, retry_after_s)
        super().__init__(
            f"rate limit reached: {what} of {scope.name} ({limit}); try again in"
            f" {self.retry_after_s} s"
        )


def scopes(settings: ServerSettings, caller: Caller, tenant: Tenant) -> tuple[Scope, Scope]:
    """The caller's (a key's, a token subject's) and its tenant's limits (their own,
    else the [server] defaults)."""

    def own(value: int | None, default: int) -> int:
        return default if value is None else value

    def own_usd(value: float | None, default: float) -> float:
        return default if value is None else value

    return (
        Scope(
            kind="key",
            id=caller.limit_id,
            name=caller.limit_name,
            requests_per_minute=settings.key_requests_per_minute,
            tokens_per_minute=settings.key_tokens_per_minute,
            max_concurrent=settings.key_max_concurrent,
            daily_usd=own_usd(caller.daily_usd, settings.key_daily_usd),
        ),
        Scope(
            kind="tenant",
            id=tenant.id,
            name=f"tenant {tenant.name}",
            requests_per_minute=own(
                tenant.requests_per_minute, settings.tenant_requests_per_minute
            ),
            tokens_per_minute=own(tenant.tokens_per_minute, settings.tenant_tokens_per_minute),
            max_concurrent=own(tenant.max_concurrent, settings.tenant_max_concurrent),
            daily_usd=own_usd(tenant.daily_usd, settings.tenant_daily_usd),
        ),
    )


def open_storage(uri: str) -> Storage:
    """The async `limits` storage of `uri` (memory://, redis://HOST:PORT, ...). Redis is
    spoken through redis-py's asyncio client (the `redis` package of the server extra),
    whose counters Redis increments atomically (a Lua script per hit). The storage's
    failures are raised as `limits.errors.StorageError`."""
    async_uri = uri if uri.startswith("async+") else f"async+{uri}"
    shown = masked_url(uri)
    scheme = async_uri.split("://", 1)[0]
    options: dict[str, str | bool] = {"wrap_exceptions": True}
    if "redis" in scheme:
        options["implementation"] = "redispy"
    try:
        storage = storage_from_string(async_uri, **options)
    except (ConfigurationError, ValueError) as exc:
        raise ConfigError(
            f"server.rate_limit_storage {shown}: {str(exc).replace(uri, shown)}"
        ) from exc
    if not isinstance(storage, Storage) or not isinstance(storage, MovingWindowSupport):
        raise ConfigError(
            f"server.rate_limit_storage {shown}: a storage with moving windows is needed"
            " (memory://, redis://)"
        )
    return storage


class RateLimiter:
    """Admits a request within its key's and tenant's limits (`admit`)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.storage = open_storage(settings.rate_limit_storage)
        self._requests = MovingWindowRateLimiter(self.storage)
        self._tokens = FixedWindowRateLimiter(self.storage)

    async def aclose(self) -> None:
        """Close the storage's connections: `limits` has no close of its own, so its
        Redis client (redis-py's, behind the storage's `bridge`) is closed here."""
        bridge: Any = getattr(self.storage, "bridge", None)
        if bridge is not None:
            await bridge.get_connection().aclose()

    async def admit(self, caller: Caller, tenant: Tenant) -> Admission:
        """Count one request of `caller`; raises `RateLimited` naming the first limit it
        is over (then nothing stays counted but the request itself)."""
        checked = scopes(self.settings, caller, tenant)
        for scope in checked:
            if scope.tokens_per_minute and not await self._tokens.test(
                _per_minute(scope.tokens_per_minute), scope.kind, scope.id, "tokens"
            ):
                stats = await self._tokens.get_window_stats(
                    _per_minute(scope.tokens_per_minute), scope.kind, scope.id, "tokens"
                )
                raise RateLimited(
                    scope, "tokens per minute", scope.tokens_per_minute, _wait(stats.reset_time)
                )
        for scope in checked:
            if scope.requests_per_minute:
                item = _per_minute(scope.requests_per_minute)
                if not await self._requests.hit(item, scope.kind, scope.id, "requests"):
                    stats = await self._requests.get_window_stats(
                        item, scope.kind, scope.id, "requests"
                    )
                    raise RateLimited(
                        scope,
                        "requests per minute",
                        scope.requests_per_minute,
                        _wait(stats.reset_time),
                    )
        admission = Admission(self, checked)
        for scope in checked:
            if scope.max_concurrent:
                running = await self.storage.incr(_run_counter(scope), CONCURRENT_EXPIRY_S)
                admission.holding.append(scope)
                if running > scope.max_concurrent:
                    await admission.release(0)
                    raise RateLimited(
                        scope, "concurrent runs", scope.max_concurrent, RUN_SLOT_RETRY_S
                    )
        return admission

    async def charge_tokens(self, scopes_: tuple[Scope, ...], tokens: int) -> None:
        for scope in scopes_:
            if scope.tokens_per_minute and tokens > 0:
                item = _per_minute(scope.tokens_per_minute)
                await self._tokens.hit(item, scope.kind, scope.id, "tokens", cost=tokens)


@dataclass(slots=True)
class Admission:
    """A request let in: its run slots, given back (and its tokens charged) once, by
    `release`."""

    limiter: RateLimiter
    scopes: tuple[Scope, ...]
    holding: list[Scope] = field(default_factory=list)
    released: bool = False

    async def release(self, tokens: int) -> None:
        if self.released:
            return
        self.released = True
        storage = self.limiter.storage
        try:
            for scope in self.holding:
                left = await storage.incr(_run_counter(scope), CONCURRENT_EXPIRY_S, amount=-1)
                if left < 0:  # the counter expired while the run held its slot: back to 0
                    await storage.incr(_run_counter(scope), CONCURRENT_EXPIRY_S, amount=-left)
            await self.limiter.charge_tokens(self.scopes, tokens)
        except StorageError as exc:  # the run is over either way: it is recorded
            log.warning(
                "the rate-limit storage failed while a run gave back its slot (%s); the"
                " slot's counter ends within %d s",
                type(exc.storage_error).__name__,
                CONCURRENT_EXPIRY_S,
            )


class _PerMinute(RateLimitItemPerMinute):
    """A per-minute limit whose counters are named without its amount (`limits` puts the
    amount in the name): a limit changed while serving counts on, not from zero."""

    def key_for(self, *identifiers: str | int | float | bytes) -> str:
        return "/".join([self.namespace, "minute", *map(str, identifiers)])


def _per_minute(amount: int) -> RateLimitItem:
    return _PerMinute(amount, namespace="rlmrt")


def _run_counter(scope: Scope) -> str:
    return f"rlmrt/runs/{scope.kind}/{scope.id}"


def _wait(reset_time: float) -> int:
    return math.ceil(max(0.0, reset_time - time.time()))
