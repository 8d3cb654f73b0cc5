"""The warm pool: started sandboxes handed out once, refilled in the background."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tests.sandbox.test_kernel import FakeBridge

from rlmrt.sandbox import Limits
from rlmrt.sandbox.local import LocalSandbox
from rlmrt.sandbox.pool import SandboxPool
from rlmrt.sandbox.process import ProcessSandbox

LIMITS = Limits(exec_timeout_s=5, memory_mb=256)


async def test_acquired_sandboxes_are_started_fresh_and_answer_their_bridge() -> None:
    pool = SandboxPool(2)
    try:
        assert await pool.warm("process", LIMITS) == 2
        ready = list(pool._ready[("process", LIMITS, ())])
        bridge = FakeBridge()
        first = await pool.acquire("process", LIMITS, bridge)
        assert isinstance(first, ProcessSandbox) and first is ready[0]
        assert first.kernel_host_pid is not None  # started before it was asked for
        result = await first.execute("x = 1\nprint(llm_query('hi'))")
        assert result.stdout == "llm:hi:None\n" and bridge.calls == [("llm_query", "hi", None)]
        await first.aclose()
        # the pool refills to its size; a handed-out sandbox never comes back
        assert await pool.warm("process", LIMITS) == 2
        second = await pool.acquire("process", LIMITS, FakeBridge())
        assert second is not first
        assert (await second.execute("print('x' in globals())")).stdout == "False\n"
        await second.aclose()
    finally:
        await pool.aclose()
    assert all(s.closed for s in ready)
    assert pool.ready("process", LIMITS) == 0


async def test_limits_are_part_of_the_key() -> None:
    pool = SandboxPool(1)
    other = Limits(exec_timeout_s=7, memory_mb=128)
    try:
        await pool.warm("process", LIMITS)
        sandbox = await pool.acquire("process", other, None)
        assert sandbox.limits == other
        assert pool.ready("process", LIMITS) == 1
        await sandbox.aclose()
    finally:
        await pool.aclose()


async def test_fast_kinds_and_size_zero_are_not_pooled() -> None:
    pool = SandboxPool(2)
    try:
        assert not pool.pooled("local")
        assert await pool.warm("local", LIMITS) == 0
        sandbox = await pool.acquire("local", LIMITS, None)
        assert isinstance(sandbox, LocalSandbox)
        assert pool.ready("local", LIMITS) == 0
        await sandbox.aclose()
    finally:
        await pool.aclose()
    off = SandboxPool(0)
    assert not off.pooled("process")
    sandbox = await off.acquire("process", LIMITS, None)
    assert pool.ready("process", LIMITS) == 0
    await sandbox.aclose()
    with pytest.raises(ValueError, match="pool size must be >= 0"):
        SandboxPool(-1)


async def test_a_closed_pool_refuses_and_stops_its_refills() -> None:
    pool = SandboxPool(2)
    sandbox = await pool.acquire("process", LIMITS, None)  # starts two refills
    starting = list(pool._starting[("process", LIMITS, ())])
    assert starting
    await pool.aclose()
    assert all(task.done() for task in starting)
    assert pool.ready("process", LIMITS) == 0
    with pytest.raises(RuntimeError, match="closed"):
        await pool.acquire("process", LIMITS, None)
    assert await pool.warm("process", LIMITS) == 0
    await sandbox.aclose()


def test_a_pool_used_from_another_loop_starts_without_pooling() -> None:
    pool = SandboxPool(1)

    async def first() -> None:
        assert await pool.warm("process", LIMITS) == 1

    async def elsewhere() -> None:
        sandbox = await pool.acquire("process", LIMITS, None)
        assert sandbox.kernel_host_pid is not None  # type: ignore[attr-defined]
        await sandbox.aclose()
        assert await pool.warm("process", LIMITS) == 0

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(first())
        thread = threading.Thread(target=lambda: asyncio.run(elsewhere()))
        thread.start()
        thread.join()
        assert pool.ready("process", LIMITS) == 1  # untouched by the other loop
    finally:
        loop.run_until_complete(pool.aclose())
        loop.close()


async def test_a_failing_start_is_logged_and_the_run_sees_its_own_error(caplog) -> None:
    pool = SandboxPool(1)
    bad = Limits(exec_timeout_s=5, memory_mb=256)
    try:
        pool._ready.clear()
        original = ProcessSandbox.start
        calls = 0

        async def failing_start(self: ProcessSandbox) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:  # the refill's start fails; the run's own works
                raise OSError("no more processes")
            await original(self)

        ProcessSandbox.start = failing_start  # type: ignore[method-assign]
        try:
            sandbox = await pool.acquire("process", bad, None)
            await asyncio.gather(*pool._starting[("process", bad, ())])
        finally:
            ProcessSandbox.start = original  # type: ignore[method-assign]
        assert pool.ready("process", bad) == 0
        assert "could not start a process sandbox for the pool: no more processes" in caplog.text
        await sandbox.aclose()
    finally:
        await pool.aclose()


async def test_docker_sandboxes_are_pooled() -> None:
    pool = SandboxPool(1)
    try:
        assert await pool.warm("docker", LIMITS) == 1
        sandbox = await pool.acquire("docker", LIMITS, FakeBridge())
        assert (await sandbox.execute("print(llm_query('x'))")).stdout == "llm:x:None\n"
        await sandbox.aclose()
    finally:
        await pool.aclose()
