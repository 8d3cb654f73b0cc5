"""Answer quality on the local model: rlmrt against rlms and a direct call.

A generated task set with known answers, contexts of 100 KB to 1 MB (far beyond the
model's 8K-token window):

- count: how many log lines have a given level (exact count);
- needle: one access code hidden in filler text;
- aggregate: the total of the invoice amounts of one customer with one status.

Each task runs three ways on the same local model server (Qwen2.5-Coder-1.5B, GGUF
Q4_K_M, llama-cpp-python, temperature 0, seed 0):

- rlmrt: `RLM(...)` in this process, local sandbox, max_depth 1;
- rlms: `rlms` 0.1.3 (the paper's implementation) in its own venv
  (`bench/.peers/rlms`, see bench/README.md), `sampling_args` temperature 0, seed 0;
- direct: one chat call with the question and the context cut to what fits the
  window: the first 20,000 characters, or fewer lines when those are over 7,700
  tokens by the server's tokenizer.

An answer is right when the expected value appears in it as a whole word (numbers
compared without thousands separators). The same check for all three.

    .venv/bin/python bench/quality.py [--sizes 100000,300000,1000000] [--systems ...] [--tasks ...]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
RLMS_PYTHON = BENCH / ".peers" / "rlms" / "bin" / "python"
DIRECT_CHARS = 20_000
DIRECT_TOKENS = 7_700  # of the 8,192-token window: the question, the template, 256 out
MAX_ITERATIONS = 12
RUN_TIMEOUT_S = 300.0  # a run that needs longer on this model counts as wrong


@dataclass(frozen=True)
class Task:
    name: str
    question: str
    context: str
    answer: str


@dataclass
class Outcome:
    task: str
    system: str
    right: bool
    seconds: float
    input_tokens: int
    output_tokens: int
    answer: str | None
    error: str | None = None


# -- the task generator -------------------------------------------------------------------

_WORDS = [
    "river",
    "stone",
    "market",
    "lantern",
    "harbor",
    "copper",
    "signal",
    "meadow",
    "archive",
    "orbit",
    "ledger",
    "window",
    "canyon",
    "pepper",
    "violet",
    "engine",
    "garden",
    "thunder",
    "silver",
    "marble",
    "forest",
    "beacon",
]
_SERVICES = ("auth", "billing", "search", "mailer", "gateway", "scheduler")
_CUSTOMERS = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."


def count_task(rng: random.Random, size: int) -> Task:
    lines, errors = [], 0
    while sum(len(line) + 1 for line in lines) < size:
        level = rng.choices(("INFO", "WARN", "ERROR", "DEBUG"), (60, 20, 7, 13))[0]
        errors += level == "ERROR"
        stamp = (
            f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        )
        lines.append(f"{stamp} [{level}] {rng.choice(_SERVICES)}: {_sentence(rng)}")
    return Task(
        f"count-{size // 1000}k",
        "How many log lines have the level ERROR (written as [ERROR])? Answer with the number.",
        "\n".join(lines),
        str(errors),
    )


def needle_task(rng: random.Random, size: int) -> Task:
    paragraphs = []
    while sum(len(p) + 2 for p in paragraphs) < size:
        paragraphs.append(" ".join(_sentence(rng) for _ in range(rng.randint(3, 7))))
    vault = rng.choice(("Orion", "Vega", "Lyra", "Draco"))
    code = f"{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGHJK')}{rng.choice('LMNPQRSTUV')}"
    at = rng.randint(len(paragraphs) // 4, len(paragraphs) - 1)
    paragraphs.insert(at, f"The access code for vault {vault} is {code}. Keep it safe.")
    return Task(
        f"needle-{size // 1000}k",
        f"What is the access code for vault {vault}? Answer with the code.",
        "\n\n".join(paragraphs),
        code,
    )


def aggregate_task(rng: random.Random, size: int) -> Task:
    lines, total, number = [], 0, 0
    customer = rng.choice(_CUSTOMERS)
    while sum(len(line) + 1 for line in lines) < size:
        number += 1
        who = rng.choice(_CUSTOMERS)
        status = rng.choice(("paid", "open", "overdue"))
        amount = rng.randint(10, 5000)
        if who == customer and status == "overdue":
            total += amount
        lines.append(
            f"INV-{number:06d} | 2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} |"
            f" customer: {who} | amount: {amount} USD | status: {status}"
        )
    return Task(
        f"aggregate-{size // 1000}k",
        f"What is the total amount in USD of the invoices of {customer} whose status is"
        " overdue? Answer with the number.",
        "\n".join(lines),
        str(total),
    )


def make_tasks(sizes: list[int], seed: int) -> list[Task]:
    rng = random.Random(seed)
    return [make(rng, size) for size in sizes for make in (count_task, needle_task, aggregate_task)]


def is_right(answer: str | None, expected: str) -> bool:
    if not answer:
        return False
    text = re.sub(r"(?<=\d)[,_](?=\d{3})", "", answer)
    return re.search(rf"(?<![\w-]){re.escape(expected)}(?![\w-]|\.\d)", text) is not None


# -- the three systems ----------------------------------------------------------------------


def run_rlmrt(task: Task, url: str, model: str) -> Outcome:
    from rlmrt import RLM

    rlm = RLM(
        model=f"openai/{model}",
        api_base=url,
        api_key="sk-local",
        temperature=0,
        seed=0,
        max_iterations=MAX_ITERATIONS,
        max_wall_time_s=RUN_TIMEOUT_S,
        sandbox="local",
        save_trajectory=True,
    )
    started = time.perf_counter()
    try:
        result = rlm.completion(task.question, context=task.context)
    except Exception as exc:  # a failed run is a wrong answer, with its reason
        return Outcome(
            task.name, "rlmrt", False, time.perf_counter() - started, 0, 0, None, str(exc)
        )
    finally:
        rlm.close()
    return Outcome(
        task.name,
        "rlmrt",
        is_right(result.answer, task.answer),
        time.perf_counter() - started,
        result.usage.input_tokens,
        result.usage.output_tokens,
        result.answer,
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
                    "max_iterations": MAX_ITERATIONS,
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
            took = time.perf_counter() - started
            return Outcome(task.name, "rlms", False, took, 0, 0, None, "timed out")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return Outcome(task.name, "rlms", False, time.perf_counter() - started, 0, 0, None, error)
    out = json.loads(lines[-1])
    return Outcome(
        task.name,
        "rlms",
        is_right(out["answer"], task.answer),
        out["seconds"],
        int(out.get("input_tokens") or 0),
        int(out.get("output_tokens") or 0),
        out["answer"],
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
        return Outcome(task.name, "direct", False, took, 0, 0, None, f"{type(exc).__name__}: {exc}")
    usage = reply.get("usage") or {}
    return Outcome(
        task.name,
        "direct",
        is_right(answer, task.answer),
        time.perf_counter() - started,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        answer,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--systems", default="rlmrt,rlms,direct")
    parser.add_argument("--tasks", default="count,needle,aggregate", help="task kinds to run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "quality.json")
    args = parser.parse_args()
    from rlmrt.local.catalog import get_model
    from rlmrt.local.server import ensure_server

    model = get_model(None)
    url = ensure_server(model).base_url
    kinds = set(args.tasks.split(","))
    tasks = make_tasks([int(s) for s in args.sizes.split(",")], args.seed)
    tasks = [task for task in tasks if task.name.split("-")[0] in kinds]
    outcomes: list[Outcome] = []
    for task in tasks:
        for system in args.systems.split(","):
            outcome = SYSTEMS[system](task, url, model.name)
            outcomes.append(outcome)
            mark = "right" if outcome.right else "wrong"
            print(
                f"{task.name:16} {system:7} {mark:5} {outcome.seconds:7.1f}s"
                f" in={outcome.input_tokens} out={outcome.output_tokens}"
                f" answer={(outcome.answer or outcome.error or '')[:60]!r}",
                flush=True,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    print("\n| system | right | accuracy | median s | input tokens | output tokens |")
    print("|---|---|---|---|---|---|")
    for system in args.systems.split(","):
        mine = [o for o in outcomes if o.system == system]
        right = sum(o.right for o in mine)
        seconds = sorted(o.seconds for o in mine)[len(mine) // 2]
        print(
            f"| {system} | {right}/{len(mine)} | {100 * right / len(mine):.0f}% | {seconds:.1f}"
            f" | {sum(o.input_tokens for o in mine)} | {sum(o.output_tokens for o in mine)} |"
        )


if __name__ == "__main__":
    sys.exit(main())
