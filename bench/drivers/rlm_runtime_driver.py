"""Run the counting task through `rlm-runtime` 2.1.x; see bench/README.md.

rlm-runtime has no context input: `RLM.completion(prompt)` is the only way in, so the
prompt is the question, a blank line, then the context. Its REPL (`execute_code`)
cannot call sub-models; sub-calls are the `rlm_batch_complete` tool, whose arguments
the model writes, so the model sends the chunks of the context itself.

Configuration changed from the defaults, each only so that the task can run at all:
`token_budget` (default 8,000 tokens: less than the 1 MB context itself) and
`sub_calls_max_per_turn` (default 5: fewer than K). Trajectory logs stay on (the
default) and go to the driver's temporary working directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import drive


def setup(spec: dict[str, Any]) -> Callable[[str], str]:
    from rlm import RLM, RLMConfig
    from rlm.backends.litellm import LiteLLMBackend

    config = RLMConfig(
        token_budget=10**12,
        sub_calls_max_per_turn=max(5, int(spec["k"])),
        log_dir=Path.cwd() / "logs",
    )
    backend = LiteLLMBackend(model="openai/bench-model", api_base=spec["url"], api_key="sk-bench")
    rlm = RLM(backend=backend, environment="local", config=config)
    loop = asyncio.new_event_loop()

    def run(context: str) -> str:
        result = loop.run_until_complete(rlm.completion(f"{spec['question']}\n\n{context}"))
        if result.error:
            return f"error: {result.error}"
        return str(result.response)

    return run


if __name__ == "__main__":
    drive(setup)
