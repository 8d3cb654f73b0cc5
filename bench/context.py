"""Local context index benchmark: full index, incremental re-index, query latency.

    python bench/context.py [--files 10000]

Generates a fixed-seed project (Markdown, Python and text) in a temp folder.
Targets: full index <= 30 s, re-index after touching 1% <= 1 s, query p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from rlmrt.context.local_index import LocalIndex

WORDS = [f"w{i:04d}" for i in range(3000)] + [
    "budget", "sandbox", "kernel", "retry", "cache", "token", "model", "index", "query",
    "event", "stream", "config", "error", "server", "client", "memory", "context",
]  # fmt: skip


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _file(rng: random.Random, i: int) -> tuple[str, str]:
    kind = i % 3
    if kind == 0:
        parts = [f"# Doc {i}\n\n{_sentence(rng, 30)}\n"]
        parts += [
            f"## {_sentence(rng, 3)}\n\n{_sentence(rng, 60)}\n" for _ in range(rng.randint(2, 6))
        ]
        return f"docs/d{i % 50}/doc{i}.md", "\n".join(parts)
    if kind == 1:
        parts = ["import os\n"]
        for j in range(rng.randint(2, 8)):
            w = rng.choice(WORDS)
            parts.append(f"def f{j}_{w}(x):\n    '''{_sentence(rng, 12)}'''\n    return x + {j}\n")
        parts.append(f"class C{i}:\n    def run(self):\n        return '{_sentence(rng, 8)}'\n")
        return f"src/p{i % 50}/m{i}.py", "\n\n".join(parts)
    paras = [_sentence(rng, rng.randint(20, 80)) for _ in range(rng.randint(2, 8))]
    return f"notes/n{i % 50}/note{i}.txt", "\n\n".join(paras)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(1234)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        paths = []
        for i in range(args.files):
            rel, text = _file(rng, i)
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            paths.append(path)
        size_mb = sum(p.stat().st_size for p in paths) / 1e6
        index = LocalIndex(root, index_path=Path(tmp) / "index.sqlite")
        full = index.refresh()

        for path in rng.sample(paths, max(1, args.files // 100)):
            path.write_text(path.read_text() + "\nappended budget note\n")
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        incremental = index.refresh()

        queries = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
            for _ in range(args.queries)
        ]

        async def run() -> list[float]:
            out = []
            await index.search("warm up")
            for q in queries:
                t0 = time.perf_counter()
                await index.search(q, max_tokens=2000)
                out.append((time.perf_counter() - t0) * 1000)
            return out

        lat = sorted(asyncio.run(run()))
        index.close()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, round(0.99 * len(lat)) - 1)]
        print(
            f"{args.files} files ({size_mb:.1f} MB), {full.chunks} chunks;"
            f" re-index: {incremental.updated} updated, {incremental.unchanged} unchanged"
        )
        print("| measure | result | target |")
        print("|---|---|---|")
        print(f"| full index, {args.files} files | {full.seconds:.2f} s | <= 30 s |")
        print(f"| re-index after touching 1% | {incremental.seconds:.2f} s | <= 1 s |")
        print(f"| query p50 ({len(lat)} queries) | {p50:.2f} ms | |")
        print(f"| query p99 | {lat[-1] if len(lat) < 100 else p99:.2f} ms | <= 20 ms |")


if __name__ == "__main__":
    main()
