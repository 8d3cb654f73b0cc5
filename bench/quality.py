"""Answer quality on the local model: rlmrt against rlms and a direct call.

Generated task families with known answers, contexts of 80 KB to 1 MB (far beyond the
model's 8K-token window), split into a tuning half and a held-out half
(`quality_tasks.py`; `--list` shows them). Each task runs three ways on the same local
model server (Qwen2.5-Coder-1.5B, GGUF Q4_K_M, llama-cpp-python):

- rlmrt: `RLM(...)` in this process with the settings a user gets by default on the
  local model (`use_local_model` over a default `RLMConfig`: default `max_iterations`,
  sandbox and profile, no task hints); only a wall-time cap is added;
- rlms: `rlms` 0.1.3 (the paper's implementation) in its own venv
  (`bench/.peers/rlms`, see bench/README.md), `sampling_args` temperature 0, seed 0,
  rlmrt's default `max_iterations`;
- direct: one chat call with the question and the context cut to what fits the
  window: the first 20,000 characters, or fewer lines when those are over 7,700
  tokens by the server's tokenizer.

An answer is right when the expected value appears in it as a whole word (numbers
compared without thousands separators). The same check for all three.

    .venv/bin/python bench/quality.py [--split tuning|heldout|all] [--families a,b]
        [--sizes 100000,300000,1000000] [--per-family N] [--seed 7] [--systems ...]
    .venv/bin/python bench/quality.py --check   # every family, every size; no model
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from quality_check import check
from quality_tasks import FAMILIES, MAX_SIZE, MIN_SIZE, SPLITS, Task, make_tasks, select_families

BENCH = Path(__file__).resolve().parent
RLMS_PYTHON = BENCH / ".peers" / "rlms" / "bin" / "python"
DIRECT_CHARS = 20_000
DIRECT_TOKENS = 7_700  # of the 8,192-token window: the question, the template, 256 out
RUN_TIMEOUT_S = 300.0  # a run that needs longer on this model counts as wrong


@dataclass
class Outcome:
    task: str
    family: str
    split: str
    system: str
    right: bool
    seconds: float
    input_tokens: int
    output_tokens: int
    answer: str | None
    error: str | None = None


def outcome(
    task: Task,
    system: str,
    seconds: float,
    answer: str | None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    error: str | None = None,
) -> Outcome:
    """How `system` did on `task`, judged by `is_right` (the same check for every system)."""
    right = is_right(answer, task.answer)
    return Outcome(
        task.name,
        task.family,
        task.split,
        system,
        right,
        seconds,
        input_tokens,
        output_tokens,
        answer,
        error,
    )


def is_right(answer: str | None, expected: str) -> bool:
    """`expected` as a whole token of the answer: `rlm batch --match contains`'s rule."""
    from rlmrt.batch.scoring import is_right as scored

    return scored(answer, expected, "contains")


# -- the three systems ----------------------------------------------------------------------


def default_max_iterations() -> int:
    from rlmrt import RLMConfig

    return RLMConfig().budget.max_iterations


def run_rlmrt(task: Task, url: str, model: str) -> Outcome:
    """A run as a user without a configured model gets it; `url` and `model` are the
    server `use_local_model` finds again."""
    from rlmrt import RLM, RLMConfig
    from rlmrt.local.default import use_local_model

    config, client = use_local_model(RLMConfig(max_wall_time_s=RUN_TIMEOUT_S))
    rlm = RLM(config=config, client=client)
    started = time.perf_counter()
    try:
        result = rlm.completion(task.question, context=task.context)
    except Exception as exc:  # a failed run is a wrong answer, with its reason
        return outcome(task, "rlmrt", time.perf_counter() - started, None, error=str(exc))
    finally:
        rlm.close()
    return outcome(
        task,
        "rlmrt",
        time.perf_counter() - started,
        result.answer,
        result.usage.input_tokens,
        result.usage.output_tokens,
    )


def run_rlms(task: Task, url: str, model: str) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        context_file = Path(tmp) / "context.txt"
        context_file.write_text(task.context)
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "url": url,
                    "model": model,
                    "question": task.question,
                    "context_file": str(context_file),
                    "max_iterations": default_max_iterations(),
                }
            )
        )
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [str(RLMS_PYTHON), str(BENCH / "drivers" / "rlms_quality_driver.py"), str(spec)],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return outcome(task, "rlms", time.perf_counter() - started, None, error="timed out")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return outcome(task, "rlms", time.perf_counter() - started, None, error=error)
    out = json.loads(lines[-1])
    return outcome(
        task,
        "rlms",
        out["seconds"],
        out["answer"],
        int(out.get("input_tokens") or 0),
        int(out.get("output_tokens") or 0),
        out["error"],
    )


def run_direct(task: Task, url: str, model: str) -> Outcome:
    started = time.perf_counter()
    try:
        document = _fitting_prefix(url, task.context[:DIRECT_CHARS], DIRECT_TOKENS)
        prompt = f"{task.question}\n\nThe document (cut to what fits):\n\n{document}"
        reply = _chat(url, model, prompt)
        answer = reply["choices"][0]["message"]["content"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        took = time.perf_counter() - started
        return outcome(task, "direct", took, None, error=f"{type(exc).__name__}: {exc}")
    usage = reply.get("usage") or {}
    return outcome(
        task,
        "direct",
        time.perf_counter() - started,
        answer,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )


def _fitting_prefix(url: str, text: str, budget: int) -> str:
    """The longest prefix of `text` (cut at a line end) of at most `budget` tokens, by
    the server's own tokenizer: digit-dense text runs to ~3 characters a token."""
    while True:
        tokens = _count_tokens(url, text)
        if tokens <= budget:
            return text
        cut = int(len(text) * budget / tokens * 0.98)
        text = text[: text.rfind("\n", 0, cut) + 1 or cut]


def _count_tokens(url: str, text: str) -> int:
    base = url.removesuffix("/v1")
    reply = httpx.post(f"{base}/extras/tokenize", json={"input": text}, timeout=60)
    reply.raise_for_status()
    return len(reply.json()["tokens"])


def _chat(url: str, model: str, prompt: str) -> dict[str, Any]:
    reply = httpx.post(
        f"{url}/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "seed": 0,
            "max_tokens": 256,
        },
        timeout=RUN_TIMEOUT_S,
    )
    if reply.status_code != 200:
        raise ValueError(f"HTTP {reply.status_code}: {reply.text[:200]}")
    answer: dict[str, Any] = reply.json()
    return answer


SYSTEMS: dict[str, Callable[[Task, str, str], Outcome]] = {
    "rlmrt": run_rlmrt,
    "rlms": run_rlms,
    "direct": run_direct,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--families", help=f"comma-separated, of: {', '.join(FAMILIES)}")
    parser.add_argument("--sizes", default="100000,300000,1000000", help="characters")
    parser.add_argument(
        "--per-family",
        type=int,
        help="instances per family, sizes taken in turn (default: one per size; --check: 2)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--systems", default="rlmrt,rlms,direct")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "quality.json")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"generate every family at {MIN_SIZE:,} to {MAX_SIZE:,} characters and recheck"
        " every answer independently; no model",
    )
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    args = parser.parse_args()
    try:
        families = select_families(args.families, args.split)
        sizes = [int(size) for size in args.sizes.split(",")]
        unknown = sorted(set(args.systems.split(",")) - set(SYSTEMS))
        if unknown:
            raise ValueError(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
        systems = [SYSTEMS[name] for name in args.systems.split(",")]
        if run_rlms in systems and not args.check and not RLMS_PYTHON.exists():
            raise ValueError(f"rlms needs its venv at {RLMS_PYTHON} (see bench/README.md)")
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for family in families:
            print(f"{family.name:12} {family.split:8} {family.shape}")
        return 0
    if args.check:
        return 1 if check(families, args.seed, args.per_family or 2) else 0
    from rlmrt.local.catalog import get_model
    from rlmrt.local.server import ensure_server

    model = get_model(None)
    url = ensure_server(model).base_url
    try:
        tasks = make_tasks(families, sizes, args.seed, args.per_family or len(sizes))
    except ValueError as exc:
        parser.error(str(exc))
    outcomes: list[Outcome] = []
    for task in tasks:
        for run in systems:
            result = run(task, url, model.name)
            outcomes.append(result)
            mark = "right" if result.right else "wrong"
            print(
                f"{task.name:20} {task.split:8} {result.system:7} {mark:5}"
                f" {result.seconds:7.1f}s in={result.input_tokens} out={result.output_tokens}"
                f" answer={(result.answer or result.error or '')[:60]!r} expected={task.answer!r}",
                flush=True,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    print(summary(outcomes))
    return 0


def summary(outcomes: list[Outcome]) -> str:
    """Markdown tables: per system and split (accuracy, median wall time, tokens), then
    right answers per family and system."""
    systems = list(dict.fromkeys(o.system for o in outcomes))
    rows = [
        "| system | split | right | accuracy | median s | input tokens | output tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        for split in (*SPLITS, "all"):
            mine = [o for o in outcomes if o.system == system and split in ("all", o.split)]
            if not mine:
                continue
            right = sum(o.right for o in mine)
            tokens_in, tokens_out = (
                sum(o.input_tokens for o in mine),
                sum(o.output_tokens for o in mine),
            )
            rows.append(
                f"| {system} | {split} | {right}/{len(mine)} | {100 * right / len(mine):.0f}%"
                f" | {statistics.median(o.seconds for o in mine):.1f}"
                f" | {tokens_in:,} | {tokens_out:,} |"
            )
    rows += ["", f"| family | split | {' | '.join(systems)} |", "|---|---|" + "---|" * len(systems)]
    for family in dict.fromkeys(o.family for o in outcomes):
        mine = [o for o in outcomes if o.family == family]
        cells = []
        for system in systems:
            theirs = [o for o in mine if o.system == system]
            cells.append(f"{sum(o.right for o in theirs)}/{len(theirs)}")
        rows.append(f"| {family} | {mine[0].split} | {' | '.join(cells)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
