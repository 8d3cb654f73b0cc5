"""Cost of a tool call from REPL code, per sandbox kind: a trivial host tool called in a
loop (per-call overhead: code -> kernel channel -> host tool table -> ToolBox -> back,
with its event) and 1,000 calls in one `tools.batch` (wall time).

Each kind does one real run on a scripted model (in this process; it answers twice).
The code it runs times itself inside the sandbox with `time.perf_counter`, so the
numbers are what the model's code waits for, without the model.

    .venv/bin/python bench/tools.py [--calls 2000] [--batch 1000] [--repeats 3]
        [--kinds local process docker wasm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rlmrt import RLM
from rlmrt.errors import RLMError
from rlmrt.testing import ScriptedOpenAIServer, scripted
from rlmrt.tools import tool


@tool(version="1.0.0")
def noop(x: int) -> int:
    """Return x (a tool that costs nothing itself).

    Args:
        x: any integer
    """
    return x


@tool(version="1.0.0")
async def anoop(x: int) -> int:
    """Return x, as an async tool.

    Args:
        x: any integer
    """
    return x


CODE = """\
```repl
import time
def timed(name, calls):
    times = []
    for i in range(calls):
        started = time.perf_counter()
        getattr(tools, name)(i)
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2]
timed("noop", 50)
sync_ms = timed("noop", CALLS) * 1000
async_ms = timed("anoop", CALLS) * 1000
started = time.perf_counter()
out = tools.batch([("noop", {"x": i}) for i in range(BATCH)])
batch_ms = (time.perf_counter() - started) * 1000
assert out == list(range(BATCH))
FINAL({"sync_ms": sync_ms, "async_ms": async_ms, "batch_ms": batch_ms})
```"""


def measure(kind: str, calls: int, batch: int, runs: Path) -> dict[str, float]:
    code = CODE.replace("CALLS", str(calls)).replace("BATCH", str(batch))
    with (
        ScriptedOpenAIServer(scripted(root=[code])) as server,
        RLM(
            model="openai/bench",
            api_base=server.url,
            api_key="k",
            sandbox=kind,
            trajectory_dir=runs,
            max_tool_calls=2 * calls + batch + 100,
            exec_timeout_s=600,
        ) as rlm,
    ):
        result = rlm.completion("bench", context="c", tools=[noop, anoop])
    if result.answer is None or result.partial:
        raise RuntimeError(f"the run did not finish: {result.stop_reason} {result.error}")
    numbers: dict[str, float] = json.loads(result.answer.replace("'", '"'))
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls timed one by one")
    parser.add_argument("--batch", type=int, default=1000, help="calls in one tools.batch")
    parser.add_argument("--repeats", type=int, default=3, help="runs per kind (median)")
    parser.add_argument("--kinds", nargs="+", default=["local", "process", "docker", "wasm"])
    args = parser.parse_args()
    print(
        f"| kind | tool call ms (median of {args.calls}) | async tool call ms |"
        f" {args.batch} calls in one tools.batch ms |"
    )
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            try:
                rows = [
                    measure(kind, args.calls, args.batch, Path(folder)) for _ in range(args.repeats)
                ]
            except (RLMError, RuntimeError, ImportError) as exc:
                print(f"| {kind} | cannot run here: {exc} | | |")
                continue
            cells = [
                statistics.median(row[key] for row in rows)
                for key in ("sync_ms", "async_ms", "batch_ms")
            ]
            print(f"| {kind} | {cells[0]:.3f} | {cells[1]:.3f} | {cells[2]:.1f} |")


if __name__ == "__main__":
    main()
