"""Run the counting task through `rlms` 0.1.3 (alexzhang13/rlm); see bench/README.md.

The context is the completion's `prompt` (rlms loads it into the REPL as `context`) and
the question is its `root_prompt`. Sub-calls go through `llm_query_batched`, which
rlms serves from its own socket server; the run ends when the REPL code sets
`answer["ready"] = True` (rlms' equivalent of FINAL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _measure import drive


def setup(spec: dict[str, Any]) -> Callable[[str], str]:
    from rlm import RLM

    rlm = RLM(
        backend="openai",
        backend_kwargs={
            "model_name": "bench-model",
            "base_url": spec["url"],
            "api_key": "sk-bench",
        },
        environment="local",
        max_depth=1,
    )

    def run(context: str) -> str:
        return str(rlm.completion(context, root_prompt=spec["question"]).response)

    return run


if __name__ == "__main__":
    drive(setup)
