"""How long `import rlmrt` takes (target: <= 150 ms on the reference machine).

Each sample is a fresh interpreter, so nothing is cached in the process; the median
of N samples is reported, next to the bare interpreter start for comparison.

    .venv/bin/python bench/import_time.py [-n 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = (
    "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
)


def sample(module: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="fresh interpreters per module")
    args = parser.parse_args()
    print("| import | median ms |")
    print("|---|---|")
    for module in ("rlmrt", "rlmrt.testing", "rlmrt.engine.rlm", "rlmrt.llm.openai_client"):
        print(f"| `{module}` | {sample(module, args.n):.1f} |")


if __name__ == "__main__":
    main()
