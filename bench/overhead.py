"""Runtime overhead of rlmrt against two peer runtimes from PyPI. See bench/README.md.

The task: count a planted word in a context of 1 MB or 50 MB, split into K sub-calls,
with the model (bench/scripted_server.py) answering after 0 or 50 ms. Per run it
reports overhead (wall time minus the model critical path, 3 x latency: root call, one
wave of sub-calls, final root call), RSS growth (peak RSS during the run minus RSS
before it, after import and a warm-up), the most requests the server had in flight,
and the bytes the server received.

    python bench/overhead.py --setup        # create the peers' venvs (idempotent)
    python bench/overhead.py --quick        # 1 MB only, one repeat
    python bench/overhead.py                # full grid, median of 3 repeats

Runtimes run interleaved in one invocation, each run in a fresh driver process
(bench/drivers/) under the runtime's own venv. Results go to
bench/results/overhead-<date>.json; a Markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_DIR = BENCH / ".peers"
RESULTS = BENCH / "results"
MARK = "@@BENCH "

PEERS = {"rlms": "rlms==0.1.3", "rlm-runtime": "rlm-runtime[mcp]"}
# rlmrt with telemetry on: spans (to the SDK's in-memory exporter, or over OTLP/HTTP to a
# sink in this process) and Prometheus metrics; plain "rlmrt" runs with both off
OBSERVED = {"rlmrt+otel": "memory", "rlmrt+otlp": "otlp"}
# rlmrt-local: rlmrt on the in-process sandbox instead of its default (process), to
# measure what the safe default costs
SANDBOX = {"rlmrt-local": "local"}
DISTRIBUTIONS = {
    "rlmrt": "rlmrt",
    **dict.fromkeys(OBSERVED, "rlmrt"),
    **dict.fromkeys(SANDBOX, "rlmrt"),
    "rlms": "rlms",
    "rlm-runtime": "rlm-runtime",
}
RUNTIMES = ("rlmrt", *SANDBOX, *OBSERVED, "rlms", "rlm-runtime")
DEFAULT_RUNTIMES = ("rlmrt", *OBSERVED, "rlms", "rlm-runtime")
DRIVERS = {
    "rlmrt": BENCH / "drivers" / "rlmrt_driver.py",
    "rlms": BENCH / "drivers" / "rlms_driver.py",
    "rlm-runtime": BENCH / "drivers" / "rlm_runtime_driver.py",
}

WORD = "zyzzyva"
FILLER_LETTERS = "abcdefghijklmnopqrstuvwxy"  # no "z": filler can never spell WORD
WORDS_PER_LINE = 12
SEED = 20250101
MIB = 1 << 20
RUN_TIMEOUT_S = 1800.0


BASELINE = "rlmrt@base"  # rlmrt from another checkout (--baseline), side by side
BASELINE_SRC: list[Path] = []  # that checkout's src/, once --baseline sets it


def python_for(runtime: str) -> Path:
    if _driver(runtime) == "rlmrt":
        return ROOT / ".venv" / "bin" / "python"
    return PEERS_DIR / runtime / "bin" / "python"


def child_env(runtime: str = "rlmrt") -> dict[str, str]:
    env = dict(os.environ)
    # rlmrt may not be installed in the project venv (no editable install): use src/.
    src = BASELINE_SRC[0] if runtime == BASELINE else ROOT / "src"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # litellm (rlmrt, rlm-runtime) would fetch its model price map from the internet
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


# -- setup -----------------------------------------------------------------------------


def setup_peers() -> None:
    """Create bench/.peers/<name> with `python -m venv` and pip-install the peer. Idempotent."""
    for name, requirement in PEERS.items():
        target = PEERS_DIR / name
        python = target / "bin" / "python"
        if not python.exists():
            print(f"creating venv {target}", flush=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(target)
        # pip does nothing when the requirement is already satisfied
        subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True)
        print(f"{name}: {_version(name)}", flush=True)


def _driver(runtime: str) -> str:
    """The runtime whose driver and model protocol `runtime` uses."""
    return "rlmrt" if runtime == BASELINE or runtime in OBSERVED or runtime in SANDBOX else runtime


def _version(runtime: str) -> str:
    if runtime == BASELINE:
        head = subprocess.run(
            ["git", "-C", str(BASELINE_SRC[0]), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        )
        return f"{BASELINE_SRC[0].parent} at {head.stdout.strip() or '?'}"
    probe = f"import importlib.metadata as m; print(m.version({DISTRIBUTIONS[runtime]!r}))"
    done = subprocess.run(
        [str(python_for(runtime)), "-c", probe],
        capture_output=True,
        text=True,
        env=child_env(runtime),
    )
    return done.stdout.strip() if done.returncode == 0 else "not installed"


# -- contexts --------------------------------------------------------------------------


def planted_count(size_mib: int) -> int:
    return 100 + 41 * size_mib


def make_context(size_mib: int) -> tuple[Path, Path, int]:
    """Deterministic random words in lines, WORD planted at the start of known lines.

    Returns (context file, warm-up file, number of occurrences). Cached in results/.
    """
    folder = RESULTS / "contexts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"context-{size_mib}mib-{SEED}.txt"
    warm = folder / f"warmup-{size_mib}mib-{SEED}.txt"
    expected = planted_count(size_mib)
    if path.exists() and warm.exists():
        return path, warm, expected
    rng = random.Random(SEED + size_mib)
    vocabulary = ["".join(rng.choices(FILLER_LETTERS, k=rng.randint(2, 10))) for _ in range(5000)]
    lines: list[str] = []
    size = 0
    while size < size_mib * MIB:
        line = " ".join(rng.choices(vocabulary, k=WORDS_PER_LINE)) + "\n"
        lines.append(line)
        size += len(line)
    for index in rng.sample(range(len(lines)), expected):
        lines[index] = WORD + lines[index][lines[index].index(" ") :]
    text = "".join(lines)
    assert text.count(WORD) == expected
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    head = text[: 64 * 1024]
    warm.write_text(head[: head.rindex("\n") + 1])
    return path, warm, expected


# -- the scripted server ---------------------------------------------------------------


class Server:
    """bench/scripted_server.py in its own process, driven over its stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(python_for("rlmrt")), str(BENCH / "scripted_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        first = self._read()
        self.url: str = first["url"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the scripted server exited (code {self.proc.poll()})")
        return json.loads(line)

    def command(self, **data: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(data) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- an OTLP sink -----------------------------------------------------------------------


class OTLPSink:
    """Answers 200 to every OTLP/HTTP export, in a thread of this process, and counts
    the bytes: what a collector on localhost costs the exporting side."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# -- one run ---------------------------------------------------------------------------


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        if line.startswith(MARK):
            lines.put(line[len(MARK) :])
    lines.put(None)


def _next_event(lines: queue.Queue[str | None], deadline: float) -> dict[str, Any]:
    try:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise TimeoutError("the driver did not answer in time") from None
    if line is None:
        raise RuntimeError("the driver exited without a result")
    return json.loads(line)


def run_one(
    server: Server,
    runtime: str,
    context: tuple[Path, Path, int],
    size_mib: int,
    k: int,
    latency_ms: int,
    warmup: bool,
) -> dict[str, Any]:
    path, warm, expected = context
    record: dict[str, Any] = {
        "runtime": runtime,
        "size_mib": size_mib,
        "k": k,
        "latency_ms": latency_ms,
        "expected": expected,
    }
    spec = {
        "url": server.url,
        "context_path": str(path),
        "warmup_path": str(warm) if warmup else None,
        "question": f"How many times does the word {WORD} occur in the context?",
        "k": k,
        "observe": OBSERVED.get(runtime),
        "sandbox": SANDBOX.get(runtime),
    }
    server.command(cmd="configure", runtime=_driver(runtime), k=k, word=WORD, latency_ms=latency_ms)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{runtime}-"))
    stderr_path = workdir / "stderr.txt"
    proc: subprocess.Popen[str] | None = None
    try:
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(
                [str(python_for(runtime)), str(DRIVERS[_driver(runtime)]), json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=workdir,
                env=child_env(runtime),
            )
            assert proc.stdout is not None
            assert proc.stdin is not None
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
            deadline = time.monotonic() + RUN_TIMEOUT_S
            event = _next_event(lines, deadline)
            if event["event"] == "ready":
                server.command(cmd="stats")  # forget the warm-up's requests
                proc.stdin.write("go\n")
                proc.stdin.flush()
                event = _next_event(lines, deadline)
            stats = server.command(cmd="stats")
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        if event["event"] != "result":
            record["error"] = event.get("error", str(event))
            return record
        record.update({key: value for key, value in event.items() if key != "event"})
        record["server"] = stats
        record["overhead_s"] = event["wall_s"] - 3 * latency_ms / 1000
        record["rss_growth_mb"] = (event["peak_rss_kb"] - event["rss_before_run_kb"]) / 1024
        record["rss_growth_from_import_mb"] = (
            event["peak_rss_kb"] - event["rss_after_import_kb"]
        ) / 1024
        record["correct"] = _as_int(event["answer"]) == expected
    except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        server.command(cmd="stats")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if "error" in record:
            record["stderr_tail"] = stderr_path.read_text(errors="replace")[-3000:]
        shutil.rmtree(workdir, ignore_errors=True)
    return record


def _as_int(answer: str) -> int | None:
    try:
        return int(str(answer).strip().strip("'\""))
    except ValueError:
        return None


# -- report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / MIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in records:
        key = (record["size_mib"], record["k"], record["latency_ms"], record["runtime"])
        groups.setdefault(key, []).append(record)
    rows = []
    for (size_mib, k, latency_ms, runtime), group in sorted(
        groups.items(), key=lambda item: (*item[0][:3], (*RUNTIMES, BASELINE).index(item[0][3]))
    ):
        ok = [r for r in group if "error" not in r]

        def median(field: str, runs: list[dict[str, Any]] = ok) -> float | None:
            values = [r[field] for r in runs if r.get(field) is not None]
            return statistics.median(values) if values else None

        rows.append(
            {
                "size_mib": size_mib,
                "k": k,
                "latency_ms": latency_ms,
                "runtime": runtime,
                "runs": len(group),
                "failed": len(group) - len(ok),
                "correct": sum(1 for r in ok if r.get("correct")),
                "wall_s": median("wall_s"),
                "overhead_s": median("overhead_s"),
                "rss_growth_mb": median("rss_growth_mb"),
                "max_in_flight": max((r["server"]["max_in_flight"] for r in ok), default=None),
                "requests": median("requests", [r["server"] for r in ok]),
                "mb_received": median("mb", [{"mb": r["server"]["bytes_in"] / MIB} for r in ok]),
                "wrong_answers": sorted({str(r.get("answer")) for r in ok if not r.get("correct")}),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    out = [
        "| context | K | latency | runtime | wall s | overhead s | RSS growth MiB "
        "| max in flight | requests | MiB received | correct |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        correct = f"{row['correct']}/{row['runs']}"
        if row["failed"]:
            correct += f" ({row['failed']} failed)"
        if row["wrong_answers"]:
            correct += " wrong: " + ", ".join(a[:30] for a in row["wrong_answers"])
        out.append(
            f"| {row['size_mib']} MiB | {row['k']} | {row['latency_ms']} ms | {row['runtime']} "
            f"| {num(row['wall_s'], '.3f')} | {num(row['overhead_s'], '.3f')} "
            f"| {num(row['rss_growth_mb'], '.0f')} | {num(row['max_in_flight'], 'd')} "
            f"| {num(row['requests'], '.0f')} | {num(row['mb_received'], '.1f')} | {correct} |"
        )
    return "\n".join(out)


def targets(rows: list[dict[str, Any]]) -> str:
    """rlmrt's targets from the issue, checked against this run's medians."""
    cell = {(r["size_mib"], r["k"], r["latency_ms"], r["runtime"]): r for r in rows}
    lines = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        mark = "n/a" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"- {name}: {mark} ({detail})")

    small = cell.get((1, 8, 0, "rlmrt"))
    wide_plain = cell.get((1, 64, 50, "rlmrt"))
    value = small and small["overhead_s"]
    check(
        "overhead <= 0.05 s at 1 MiB, K=8, 0 ms",
        None if value is None else value <= 0.05,
        "not measured" if value is None else f"{value:.3f} s",
    )
    big, peer = cell.get((50, 64, 50, "rlmrt")), cell.get((50, 64, 50, "rlms"))
    ours, theirs = big and big["overhead_s"], peer and peer["overhead_s"]
    check(
        "overhead <= rlms / 4 at 50 MiB, K=64, 50 ms",
        None if ours is None or theirs is None else ours <= theirs / 4,
        "not measured"
        if ours is None or theirs is None
        else f"{ours:.3f} s vs rlms {theirs:.3f} s",
    )
    rss = big and big["rss_growth_mb"]
    check(
        "RSS growth <= 4 x context at 50 MiB, K=64, 50 ms",
        None if rss is None else rss <= 4 * 50,
        "not measured" if rss is None else f"{rss:.0f} MiB vs 200 MiB",
    )
    for observed in OBSERVED:
        traced = cell.get((1, 64, 50, observed))
        with_it, without = traced and traced["overhead_s"], wide_plain and wide_plain["overhead_s"]
        check(
            f"{observed} overhead <= rlmrt + 10 ms at 1 MiB, K=64, 50 ms",
            None if with_it is None or without is None else with_it - without <= 0.010,
            "not measured"
            if with_it is None or without is None
            else f"{(with_it - without) * 1000:+.1f} ms ({with_it:.3f} s vs {without:.3f} s)",
        )
    wide = cell.get((1, 64, 50, "rlmrt"))
    seen = wide and wide["max_in_flight"]
    check(
        "all 64 sub-calls in flight at 1 MiB, K=64, 50 ms",
        None if seen is None else seen >= 64,
        "not measured" if seen is None else f"max in flight {seen}",
    )
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs and exit")
    parser.add_argument("--quick", action="store_true", help="1 MiB only, one repeat")
    parser.add_argument("--repeat", type=int, default=None, help="runs per cell (default 3)")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(DEFAULT_RUNTIMES))
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="MiB (default 1 50)")
    parser.add_argument("--ks", nargs="+", type=int, default=[8, 64])
    parser.add_argument("--latencies", nargs="+", type=int, default=[0, 50], help="ms")
    parser.add_argument("--no-warmup", action="store_true", help="measure the first call too")
    parser.add_argument("--out", type=Path, default=None, help="results JSON path")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help=f"another checkout of rlmrt, run side by side as {BASELINE!r}",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None:
        if not (args.baseline / "src" / "rlmrt").is_dir():
            parser.error(f"--baseline {args.baseline}: no src/rlmrt there")
        BASELINE_SRC.append(args.baseline.resolve() / "src")
        args.runtimes = [*args.runtimes, BASELINE]

    if args.setup:
        setup_peers()
        return 0
    sizes = args.sizes or ([1] if args.quick else [1, 50])
    repeat = args.repeat or (1 if args.quick else 3)
    missing = [rt for rt in args.runtimes if not python_for(rt).exists()]
    if missing:
        parser.error(f"no venv for {missing}: run `python bench/overhead.py --setup` first")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc)
    out = args.out or RESULTS / f"overhead-{stamp:%Y-%m-%d}.json"
    contexts = {size: make_context(size) for size in sizes}
    cells = [(s, k, lat) for s in sizes for k in args.ks for lat in args.latencies]
    meta = {
        "started": stamp.isoformat(),
        "machine": machine(),
        "versions": {rt: _version(rt) for rt in args.runtimes},
        "word": WORD,
        "repeat": repeat,
        "warmup": not args.no_warmup,
    }
    records: list[dict[str, Any]] = []
    sink = OTLPSink() if "rlmrt+otlp" in args.runtimes else None
    if sink is not None:  # the drivers' OTLP exporters send here
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
    server = Server()
    try:
        total = repeat * len(cells) * len(args.runtimes)
        for rep in range(repeat):
            for index, (size, k, latency) in enumerate(cells):
                shift = (rep + index) % len(args.runtimes)
                order = args.runtimes[shift:] + args.runtimes[:shift]
                for runtime in order:
                    record = run_one(
                        server, runtime, contexts[size], size, k, latency, not args.no_warmup
                    )
                    record["repeat"] = rep
                    records.append(record)
                    _progress(len(records), total, record)
                    out.write_text(json.dumps({"meta": meta, "runs": records}, indent=1))
    finally:
        server.close()
        if sink is not None:
            sink.close()
            meta["otlp_exports"] = sink.requests
    rows = summarize(records)
    out.write_text(json.dumps({"meta": meta, "summary": rows, "runs": records}, indent=1))
    print(f"\nresults: {out}\nmachine: {meta['machine']}\nversions: {meta['versions']}\n")
    print(markdown(rows))
    if "rlmrt" in args.runtimes:
        print("\nrlmrt targets:\n" + targets(rows))
    return 0


def _progress(done: int, total: int, record: dict[str, Any]) -> None:
    head = (
        f"[{done}/{total}] {record['runtime']:<11} {record['size_mib']:>3} MiB "
        f"K={record['k']:<3} {record['latency_ms']:>2} ms"
    )
    if "error" in record:
        print(f"{head}  ERROR {record['error'][-300:]}", flush=True)
        return
    server = record["server"]
    print(
        f"{head}  wall {record['wall_s']:.3f}s overhead {record['overhead_s']:.3f}s "
        f"rss +{record['rss_growth_mb']:.0f} MB in-flight {server['max_in_flight']} "
        f"reqs {server['requests']} in {server['bytes_in'] / MIB:.1f} MB "
        f"answer {record['answer'][:40]!r} {'ok' if record['correct'] else 'WRONG'}",
        flush=True,
    )
    if server.get("errors"):
        print(f"    server saw: {server['errors'][:2]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
