"""Run the counting task through rlmrt (this project); see bench/README.md.

The context is given as `context=`; the root code calls `llm_query_batched` and ends
with `FINAL(total)` in a ```repl block (the paper's protocol). Trajectories are saved
as by default, but into the driver's temporary working directory instead of ~/.rlmrt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import drive


def setup(spec: dict[str, Any]) -> Callable[[str], str]:
    from rlmrt import RLM

    # the default sandbox (process) unless the spec names one (rlmrt-local: "local")
    sandbox = {"sandbox": spec["sandbox"]} if spec.get("sandbox") else {}
    rlm = RLM(
        model="openai/bench-model",
        api_base=spec["url"],
        api_key="sk-bench",
        max_depth=1,
        trajectory_dir=Path.cwd() / "runs",
        **sandbox,
    )

    def run(context: str) -> str:
        return str(rlm.completion(spec["question"], context=context).answer)

    return run


if __name__ == "__main__":
    drive(setup)
