"""What `rlm serve` adds to a run: the same completions through the server and through
the library. See bench/README.md.

The model is a scripted OpenAI-compatible server in its own process (its CPU is not
charged to what is measured): the root model answers `FINAL(str(len(context)))` at
once, so a run is one root call and one sandbox execution (the in-process "local"
sandbox on both sides, so the sandbox is not what is compared). Per level of
concurrency it runs N completions:

* library: `RLM.acompletion` in this process, N at a time with asyncio;
* server: streaming `POST /v1/chat/completions` (read to `data: [DONE]`) to 1 or 4
  `rlm serve` processes (round-robin), N at a time with one httpx client.

Reported: errors, p50/p99 latency of one completion, requests/s, and the latency the
server adds (server minus library, at p50 and p99). The 4 replicas share one SQLite
file (WAL; each serves its own rate-limit counters in memory, limits off here).

    python bench/server.py                  # concurrency 1 (100 runs) and 200 (200 runs)
    python bench/server.py --quick          # fewer runs
    python bench/server.py --runs 400       # more runs at concurrency 1 (a steadier p50)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
CONTEXT = "x" * 1000
QUESTION = "How long is the context?"
TOML = """
[sandbox]
kind = "local"

[llm]
max_retries = 0

[server]
key_requests_per_minute = 0
key_tokens_per_minute = 0
key_max_concurrent = 0
tenant_requests_per_minute = 0
tenant_tokens_per_minute = 0
tenant_max_concurrent = 0
"""
START_TIMEOUT_S = 60


def model_reply(request: Any) -> str:
    """The scripted root model: the length of the context, at once."""
    return "```repl\nFINAL(str(len(context)))\n```" if request.is_rlm_root else "sub"


def serve_model() -> None:
    """`--model-server`: the scripted model until stdin ends."""
    from rlmrt.testing import ScriptedOpenAIServer

    server = ScriptedOpenAIServer(model_reply)
    server.start()
    print(json.dumps({"url": server.url}), flush=True)
    sys.stdin.read()
    server.stop()


@dataclass
class Measured:
    side: str  # "library" or "server xN"
    concurrency: int
    latencies_s: list[float]
    errors: int
    wall_s: float

    def row(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "side": self.side,
            "concurrency": self.concurrency,
            "runs": len(self.latencies_s) + self.errors,
            "errors": self.errors,
            "p50_ms": round(1000 * statistics.median(ordered), 2) if ordered else None,
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)
            if ordered
            else None,
            "requests_per_s": round(len(ordered) / self.wall_s, 1),
        }


async def _bounded(count: int, concurrency: int, one: Any) -> tuple[list[float], int, float]:
    """`count` calls of `one()`, `concurrency` at a time: latencies, errors, wall time."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = 0

    async def timed() -> None:
        nonlocal errors
        async with gate:
            start = time.perf_counter()
            try:
                await one()
            except Exception as exc:  # counted, and the first few shown
                errors += 1
                if errors <= 3:
                    print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr)
                return
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(timed() for _ in range(count)))
    return latencies, errors, time.perf_counter() - start


async def library(env: dict[str, str], folder: Path, count: int, concurrency: int) -> Measured:
    from rlmrt.config import load_config
    from rlmrt.engine.rlm import RLM

    rlm = RLM(config=load_config(config_file=folder / "rlm.toml", env=env))
    expected = str(len(CONTEXT))

    async def one() -> None:
        result = await rlm.acompletion(QUESTION, CONTEXT)
        if result.answer != expected:
            raise AssertionError(f"answer {result.answer!r}")

    async with rlm:
        await one()  # warm-up
        latencies, errors, wall = await _bounded(count, concurrency, one)
    return Measured("library", concurrency, latencies, errors, wall)


async def through_server(
    roots: list[str], key: str, count: int, concurrency: int, *, stream: bool = True
) -> Measured:
    expected = str(len(CONTEXT))
    turn = iter(range(1 << 30))
    # one kept connection per replica at least: with fewer, concurrency 1 through 4
    # replicas opened a new connection for every request
    kept = max(concurrency, len(roots))
    limits = httpx.Limits(max_connections=kept * 2, max_keepalive_connections=kept)
    body = {
        "model": "rlm",
        "messages": [{"role": "user", "content": QUESTION}],
        "context": CONTEXT,
        "stream": stream,
    }
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=limits
    ) as client:

        async def one() -> None:
            root = roots[next(turn) % len(roots)]
            if not stream:
                reply = await client.post(f"{root}/v1/chat/completions", json=body)
                if reply.status_code != 200:
                    raise RuntimeError(f"status {reply.status_code}: {reply.text!r}")
                answer = reply.json()["choices"][0]["message"]["content"]
                if answer != expected:
                    raise AssertionError(f"answer {answer!r}")
                return
            answer = ""
            async with client.stream("POST", f"{root}/v1/chat/completions", json=body) as reply:
                if reply.status_code != 200:
                    raise RuntimeError(f"status {reply.status_code}: {await reply.aread()!r}")
                done = False
                async for line in reply.aiter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        chunk = json.loads(line[6:])
                        if "error" in chunk:
                            raise RuntimeError(chunk["error"]["message"])
                        for choice in chunk["choices"]:
                            answer += choice["delta"].get("content") or ""
            if not done or answer != expected:
                raise AssertionError(f"answer {answer!r}, done {done}")

        for _replica in roots:  # warm-up: each replica's first run
            await one()
        latencies, errors, wall = await _bounded(count, concurrency, one)
    side = f"server x{len(roots)}" + ("" if stream else " (not streamed)")
    return Measured(side, concurrency, latencies, errors, wall)


def start_replicas(folder: Path, env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    processes = []
    for index in range(count):
        log = (folder / f"serve-{index}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "rlmrt.cli.main", "serve", "--port", "0"],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def replica_roots(folder: Path, processes: list[subprocess.Popen[bytes]]) -> list[str]:
    roots = []
    deadline = time.monotonic() + START_TIMEOUT_S
    for index, process in enumerate(processes):
        log = folder / f"serve-{index}.log"
        while True:
            text = log.read_text(errors="replace")
            found = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", text)
            if found and "Application startup complete" in text:
                roots.append(found.group(1))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"rlm serve did not start:\n{text}")
            time.sleep(0.1)
    return roots


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def show_failures(folder: Path, count: int) -> None:
    """The replicas' logged errors (their logs go with the temporary folder)."""
    for index in range(count):
        lines = (folder / f"serve-{index}.log").read_text(errors="replace").splitlines()
        for number, line in enumerate(lines):
            if line.startswith(("ERROR", "Traceback")) or "Error:" in line:
                print(f"  replica {index}: " + " | ".join(lines[number : number + 3]))


async def make_key(database_url: str) -> str:
    from rlmrt.server.storage import Store

    store = await Store.open(database_url)
    try:
        await store.create_tenant("bench")
        return (await store.create_key("bench"))[0]
    finally:
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--replicas", default="1,4", help="replica counts (default 1,4)")
    parser.add_argument(
        "--runs", type=int, default=100, help="runs at concurrency 1 (default 100; --quick: 20)"
    )
    args = parser.parse_args()
    if args.model_server:
        serve_model()
        return
    levels = [(1, 20), (200, 200)] if args.quick else [(1, args.runs), (200, 200)]
    replicas = [int(n) for n in args.replicas.split(",")]
    model = subprocess.Popen(
        [sys.executable, __file__, "--model-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows: list[dict[str, Any]] = []
    try:
        assert model.stdout is not None
        model_url = json.loads(model.stdout.readline())["url"]
        with tempfile.TemporaryDirectory(prefix="rlmrt-bench-server-") as tmp:
            folder = Path(tmp)
            (folder / "rlm.toml").write_text(TOML)
            home = folder / "home"
            database_url = f"sqlite+aiosqlite:///{home / 'server.db'}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
            env.update(
                RLMRT_HOME=str(home),
                RLM_LLM__MODEL="openai/bench-model",
                RLM_LLM__API_BASE=model_url,
                RLM_LLM__API_KEY="sk-bench",
                RLM_TRAJECTORY__DIR=str(home / "runs"),
                RLM_SERVER__DATABASE_URL=database_url,
            )
            key = asyncio.run(make_key(database_url))
            for concurrency, count in levels:
                measured = asyncio.run(library(env, folder, count, concurrency))
                rows.append(measured.row())
                print(json.dumps(rows[-1]), flush=True)
            for replica_count in replicas:
                processes = start_replicas(folder, env, replica_count)
                try:
                    roots = replica_roots(folder, processes)
                    for concurrency, count in levels:
                        for stream in (True, False):
                            measured = asyncio.run(
                                through_server(roots, key, count, concurrency, stream=stream)
                            )
                            rows.append(measured.row())
                            print(json.dumps(rows[-1]), flush=True)
                finally:
                    stop(processes)
                    show_failures(folder, replica_count)
    finally:
        if model.stdin is not None:
            model.stdin.close()
        model.wait(timeout=30)
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"server-{stamp}.json").write_text(json.dumps(rows, indent=2))
    base = {row["concurrency"]: row for row in rows if row["side"] == "library"}
    columns = "side | concurrency | runs | errors | p50 ms | p99 ms | req/s | added p50 | added p99"
    print(f"\n| {columns} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        lib = base[row["concurrency"]]
        added = (
            ("-", "-")
            if row["side"] == "library" or row["p50_ms"] is None
            else (
                f"{row['p50_ms'] - lib['p50_ms']:+.1f} ms",
                f"{row['p99_ms'] - lib['p99_ms']:+.1f} ms",
            )
        )
        print(
            f"| {row['side']} | {row['concurrency']} | {row['runs']} | {row['errors']} |"
            f" {row['p50_ms']} | {row['p99_ms']} | {row['requests_per_s']} |"
            f" {added[0]} | {added[1]} |"
        )


if __name__ == "__main__":
    main()
