"""Latency of every registered sandbox backend: cold start, trivial execute, pooled acquire.

For each kind in `SANDBOXES`:

- cold start: from `Sandbox(kind)` until its first `execute("x = 1")` returns, then
  close (not timed). The first sample of the process also pays the backend's imports
  and is shown apart; the median is over the next `--starts` samples.
- execute: the median of `--executes` runs of `x = 1` on one started sandbox, through
  the synchronous facade (what a user pays per call).
- pooled acquire: the median time `SandboxPool.acquire` takes when the pool holds a
  started sandbox (what a run pays for its sandbox with `sandbox_pool` > 0), over
  `--acquires` samples; "not pooled" for kinds that start fast (local).

A kind whose backend cannot start here (a missing extra) is listed with the reason.
The "remote" kind talks to a sandbox host (`rlm sandbox serve`, process kind) this
script starts on 127.0.0.1 and stops by PID at the end: its execute is a round trip
over a loopback WebSocket plus the host's own round trip to its kernel. The
"kubernetes" kind uses the cluster of `--kubeconfig` (default: $KUBECONFIG, else this
machine's, started with `bash scripts/kube-cluster start`): a cold start makes a pod,
an execute goes through the API server's attach stream.

    .venv/bin/python bench/sandboxes.py [--starts 20] [--executes 200] [--acquires 20] [--kinds ...]
        [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from rlmrt.errors import RLMError
from rlmrt.sandbox import SANDBOXES, Limits, Sandbox
from rlmrt.sandbox.pool import SandboxPool

#: what `Sandbox(kind, ...)` takes beyond the limits; "remote" is filled by `remote_host`
OPTIONS: dict[str, dict[str, Any]] = {}


@contextlib.contextmanager
def remote_host() -> Iterator[None]:
    """A sandbox host on 127.0.0.1 for the "remote" kind, stopped by its PID and reaped."""
    token = secrets.token_urlsafe(32)
    host = subprocess.Popen(
        [sys.executable, "-m", "rlmrt.cli.main", "sandbox", "serve", "--listen", "127.0.0.1:0"],
        env={**os.environ, "RLM_SANDBOX_HOST_TOKEN": token},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        OPTIONS["remote"] = {"url": host.stdout.readline().strip(), "token": token}
        yield
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(15)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait()


def cold_start(kind: str) -> float:
    started = time.perf_counter()
    sandbox = Sandbox(kind, **OPTIONS.get(kind, {}))
    try:
        result = sandbox.execute("x = 1")
        took = time.perf_counter() - started
    finally:
        sandbox.close()
    if not result.ok:
        raise RuntimeError(f"{kind}: x = 1 failed: {result.error}")
    return took


def execute_latency(kind: str, runs: int) -> float:
    with Sandbox(kind, **OPTIONS.get(kind, {})) as sandbox:
        sandbox.execute("x = 1")  # warm: first-execute costs are in the cold start
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            sandbox.execute("x = 1")
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _pooled_acquires(kind: str, runs: int) -> list[float]:
    pool, limits, times = SandboxPool(1), Limits(), []
    try:
        for _ in range(runs):
            await pool.warm(kind, limits, OPTIONS.get(kind))
            started = time.perf_counter()
            sandbox = await pool.acquire(kind, limits, None, OPTIONS.get(kind))
            times.append(time.perf_counter() - started)
            await sandbox.aclose()
    finally:
        await pool.aclose()
    return times


def pooled_acquire(kind: str, runs: int) -> str:
    if not SandboxPool(1).pooled(kind):
        return "not pooled"
    return ms(statistics.median(asyncio.run(_pooled_acquires(kind, runs))))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def measure(kind: str, starts: int, executes: int, acquires: int) -> str:
    try:
        first = cold_start(kind)
    except RLMError as exc:
        return f"| {kind} | cannot start here: {exc} | | | |"
    median_start = statistics.median(cold_start(kind) for _ in range(starts))
    execute = execute_latency(kind, executes)
    pooled = pooled_acquire(kind, acquires)
    return f"| {kind} | {ms(first)} | {ms(median_start)} | {ms(execute)} | {pooled} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="cold starts per kind")
    parser.add_argument("--executes", type=int, default=200, help="trivial executes per kind")
    parser.add_argument("--acquires", type=int, default=20, help="pooled acquires per kind")
    parser.add_argument("--kinds", default=",".join(SANDBOXES.names()), help="kinds to measure")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG") or "/tmp/rlmrt-kube/admin.kubeconfig",
        help="the cluster of the kubernetes kind",
    )
    args = parser.parse_args()
    OPTIONS["kubernetes"] = {"kubeconfig": args.kubeconfig}
    print(
        f"| kind | first start ms (with imports) | cold start ms (median of {args.starts})"
        f" | execute `x = 1` ms (median of {args.executes}) | pooled acquire ms |"
    )
    print("|---|---|---|---|---|")
    kinds = args.kinds.split(",")
    with remote_host() if "remote" in kinds else contextlib.nullcontext():
        for kind in kinds:
            print(measure(kind, args.starts, args.executes, args.acquires), flush=True)


if __name__ == "__main__":
    main()
