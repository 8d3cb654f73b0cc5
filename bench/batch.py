"""Batch throughput: records/s of `rlmrt.batch` for 1, 2 and 4 workers on the scripted
model. See bench/README.md.

Each record is one RLM run over a small inline context; the scripted model answers
after `--latency-ms` (a model's latency, so that workers can overlap their waits). The
in-process executor runs `--records` records with `concurrency` = workers; the Ray
executor starts a local Ray runtime with `num_cpus` = workers (one record per CPU at a
time) and times the batch after the runtime is up (its start is reported apart).

    python bench/batch.py                  # 200 records, 50 ms latency, 1/2/4 workers
    python bench/batch.py --records 50     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rlmrt import RLMConfig
from rlmrt.batch import BatchLimits, abatch
from rlmrt.testing import Reply, ScriptedOpenAIServer


def model_for(latency_s: float) -> Callable[[object], Reply]:
    def model(request: object) -> Reply:
        return Reply(text="```repl\nFINAL(str(len(context)))\n```", delay_s=latency_s)

    return model


def write_dataset(folder: Path, records: int) -> Path:
    path = folder / "tasks.jsonl"
    with path.open("w") as handle:
        for n in range(records):
            row = {"id": f"r{n}", "prompt": "q", "context": "x" * (n + 1), "expected": n + 1}
            handle.write(json.dumps(row) + "\n")
    return path


def run(executor: str, workers: int, dataset: Path, config: RLMConfig, folder: Path) -> dict:
    import asyncio

    out = folder / f"out-{executor}-{workers}.jsonl"
    ray_start_s = 0.0
    if executor == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        summary = asyncio.run(
            abatch(
                dataset,
                out,
                config=config,
                executor=executor,  # type: ignore[arg-type]
                limits=BatchLimits(concurrency=workers if executor == "local" else 2 * workers),
            )
        )
        seconds = time.perf_counter() - started
    finally:
        if executor == "ray":
            ray.shutdown()
    return {
        "executor": executor,
        "workers": workers,
        "records": summary.ran,
        "errors": summary.errors,
        "correct": summary.correct,
        "seconds": round(seconds, 2),
        "records_per_s": round(summary.ran / seconds, 1),
        "ray_start_s": round(ray_start_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--executors", default="local,ray")
    args = parser.parse_args()
    server = ScriptedOpenAIServer(model_for(args.latency_ms / 1000))
    server.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            dataset = write_dataset(folder, args.records)
            config = RLMConfig(
                model="openai/bench-model",
                api_base=server.url,
                api_key="sk-bench",
                sandbox="local",
                trajectory_dir=folder / "runs",
            )
            for executor in args.executors.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    row = run(executor, workers, dataset, config, folder)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
    finally:
        server.stop()
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.records} records, model latency {args.latency_ms:g} ms\n"
    )
    print("| executor | workers | records/s | wall s | errors | right | Ray start s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['executor']} | {r['workers']} | {r['records_per_s']} | {r['seconds']} | "
            f"{r['errors']} | {r['correct']}/{r['records']} | {r['ray_start_s'] or '-'} |"
        )


if __name__ == "__main__":
    main()
