"""One quality task through `rlms` 0.1.3, in its own venv; see bench/quality.py.

Reads a JSON spec {url, model, question, context_file, max_iterations} from the file
named on the command line and prints one JSON line {answer, seconds, input_tokens,
output_tokens, error}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    from rlm import RLM

    rlm = RLM(
        backend="openai",
        backend_kwargs={
            "model_name": spec["model"],
            "base_url": spec["url"],
            "api_key": "sk-local",
            "sampling_args": {"temperature": 0, "seed": spec.get("seed", 0)},
        },
        environment="local",
        max_depth=1,
        max_iterations=spec["max_iterations"],
    )
    context = Path(spec["context_file"]).read_text()
    started = time.perf_counter()
    out: dict[str, object] = {"answer": None, "error": None}
    try:
        result = rlm.completion(context, root_prompt=spec["question"])
        usage = result.usage_summary
        out.update(
            answer=str(result.response),
            input_tokens=usage.total_input_tokens,
            output_tokens=usage.total_output_tokens,
        )
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))


if __name__ == "__main__":
    main()
