"""`SandboxPool`: started sandboxes kept ready, so runs do not wait for them.

A container or a Pyodide takes from a fifth of a second to seconds to start; an RLM
run with sub-runs needs one sandbox per run. The pool keeps up to `size` started,
unused backends per (kind, limits, options) and refills in the background after each
acquire. A backend is handed out once and never comes back: no state can pass from
one run to the next. Only backends whose class sets ``slow_start = True`` are
pooled; the others are simply created and started.

A pool belongs to the event loop it was first used on (sandboxes hold transports
bound to it); called from another loop it starts sandboxes without pooling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import Any

from rlmrt.sandbox.base import HostBridge, Limits, SandboxBackend
from rlmrt.sandbox.facade import SANDBOXES, create_backend

__all__ = ["SandboxPool"]

log = logging.getLogger("rlmrt")
_Options = tuple[tuple[str, Any], ...]
_Key = tuple[str, Limits, _Options]


class SandboxPool:
    """Warm sandboxes for the runs of one `RLM` (see the module docstring)."""

    def __init__(self, size: int = 2) -> None:
        if size < 0:
            raise ValueError(f"the pool size must be >= 0, got {size}")
        self.size = size
        self._ready: dict[_Key, deque[SandboxBackend]] = defaultdict(deque)
        self._starting: dict[_Key, set[asyncio.Task[None]]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def pooled(self, kind: str) -> bool:
        return self.size > 0 and SANDBOXES.load(kind).slow_start

    async def acquire(
        self,
        kind: str,
        limits: Limits,
        bridge: HostBridge | None,
        options: Mapping[str, Any] | None = None,
    ) -> SandboxBackend:
        """A started backend of `kind` with `limits`, answering to `bridge`; `options`
        are `create_backend`'s (the kubernetes kind's cluster: pooled per options)."""
        if self._closed:
            raise RuntimeError("the sandbox pool is closed")
        frozen = _freeze(options)
        if frozen is None or not self.pooled(kind) or not self._own_loop():
            backend = create_backend(kind, limits=limits, bridge=bridge, options=options)
            await _start(backend)
            return backend
        key = (kind, limits, frozen)
        taken = self._take(key)
        if taken is None:
            backend = create_backend(kind, limits=limits, bridge=bridge, options=options)
            await _start(backend)
        else:
            backend = taken
            backend.bridge = bridge
            backend.from_pool = True
        self._refill(key)
        return backend

    async def warm(
        self, kind: str, limits: Limits, options: Mapping[str, Any] | None = None
    ) -> int:
        """Fill the pool for (kind, limits, options) and wait until it is full; how many
        are ready."""
        frozen = _freeze(options)
        if self._closed or frozen is None or not self.pooled(kind) or not self._own_loop():
            return 0
        key = (kind, limits, frozen)
        self._refill(key)
        pending = list(self._starting[key])
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(self._ready[key])

    def ready(self, kind: str, limits: Limits, options: Mapping[str, Any] | None = None) -> int:
        return len(self._ready[(kind, limits, _freeze(options) or ())])

    async def aclose(self) -> None:
        """Close every ready sandbox and stop the refills. Idempotent."""
        self._closed = True
        tasks = [task for tasks in self._starting.values() for task in tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        backends = [backend for ready in self._ready.values() for backend in ready]
        self._ready.clear()
        for backend in backends:
            await backend.aclose()

    # -- internals --------------------------------------------------------------------

    def _own_loop(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        return self._loop is loop

    def _take(self, key: _Key) -> SandboxBackend | None:
        ready = self._ready[key]
        return ready.popleft() if ready else None

    def _refill(self, key: _Key) -> None:
        missing = self.size - len(self._ready[key]) - len(self._starting[key])
        for _ in range(max(0, missing)):
            task = asyncio.create_task(self._start_one(key))
            self._starting[key].add(task)
            task.add_done_callback(self._starting[key].discard)

    async def _start_one(self, key: _Key) -> None:
        kind, limits, options = key
        backend = create_backend(kind, limits=limits, bridge=None, options=dict(options))
        try:
            await _start(backend)
        except Exception as exc:  # noqa: BLE001 - logged; a run starts its own
            # the run that needs one starts its own and reports the error itself
            log.warning("could not start a %s sandbox for the pool: %s", kind, exc)
            return
        if self._closed:
            await backend.aclose()
        else:
            self._ready[key].append(backend)


def _freeze(options: Mapping[str, Any] | None) -> _Options | None:
    """`options` as a pool key; None when a value cannot be one (such a sandbox is made
    for its run, not pooled)."""
    frozen = tuple(sorted((options or {}).items()))
    try:
        hash(frozen)
    except TypeError:
        return None
    return frozen


async def _start(backend: SandboxBackend) -> None:
    try:
        await backend.start()
    except BaseException:
        await backend.aclose()
        raise
