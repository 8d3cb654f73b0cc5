"""Learning from experience on the local model: the train/test protocol of issue 20.

Two disjoint task sets are drawn from the same families (`quality_tasks.FAMILIES`:
counting in logs, lookup in prose, aggregation and counting over ledgers, JSON records,
CSV), the training set from one seed stream and the test set from another. Then:

1. train: the training set runs as a batch (`rlmrt.batch.run_batch`, the in-process
   executor) with expected answers, so every run is judged good or bad in the memory
   store by the batch's own feedback path;
2. learn: `RLM.alearn` distils one lesson per judged run (the local model writes it);
3. test: the test set runs twice with the same settings and seed, learning off and
   learning on (the lessons most like each question in its first prompt), the two
   batches side by side.

Each run is `use_local_model` over a default `RLMConfig` (default `max_iterations`,
sandbox, profile), with a wall-time cap, its own memory store and trajectory folder
under `--workdir`. An answer is right by `rlm batch --match contains`'s rule. A run
with no model reply at all (the shared model server was busy or gone for its whole
wall time) is run again and never judged into a lesson; the wall-time cap includes the
wait for the server, so set it well above a run's own time when others share it.

    .venv/bin/python bench/learning.py [--families count,needle,...] [--sizes 20000,50000]
        [--per-family 2] [--seed 1] [--max-wall-s 150] [--workdir bench/results/learning]
        [--train-from EARLIER_WORKDIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from quality_tasks import FAMILIES, Family, Task

BENCH = Path(__file__).resolve().parent
DEFAULT_FAMILIES = "count,needle,aggregate,ledger,orders,expenses"
SETS = ("train", "test")
SERVER_RETRIES = 3  # distilling passes when the model server went away
LOST_RETRIES = 3  # batches of the runs lost to the shared model server


@dataclass
class Outcome:
    """One run of one task: how it ended, what it cost, the lessons its prompt showed."""

    task: str
    family: str
    arm: str  # train, test-off, test-on
    right: bool
    answer: str | None
    expected: str
    iterations: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    seconds: float
    error: str | None = None
    lessons: list[str] = field(default_factory=list)


def make_set(
    name: str, families: list[Family], sizes: list[int], seed: int, per_family: int
) -> list[Task]:
    """`per_family` instances of each family, drawn from a seed stream salted with the
    set's name (so train and test never share a draw), sizes taken in turn."""
    tasks = []
    for index in range(per_family):
        for family in families:
            size = sizes[index % len(sizes)]
            rng = random.Random(f"learning/{name}/{family.name}/{seed}/{index}/{size}")
            question, context, answer = family.make(rng, size)
            label = f"{name}-{family.name}-{size // 1000}k-{index}"
            tasks.append(Task(label, family.name, family.split, question, context, answer))
    return tasks


def check_disjoint(train: list[Task], test: list[Task]) -> None:
    """No test context is a training context (the questions of a family may read alike)."""
    shared = {t.context for t in train} & {t.context for t in test}
    if shared:
        raise SystemExit(f"{len(shared)} contexts are in both sets; change --seed")


def write_dataset(tasks: list[Task], path: Path) -> Path:
    with path.open("w") as handle:
        for task in tasks:
            row = {
                "id": task.name,
                "prompt": task.question,
                "context": task.context,
                "expected": task.answer,
            }
            handle.write(json.dumps(row) + "\n")
    return path


async def run_arm(
    tasks: list[Task], arm: str, workdir: Path, max_wall_s: float, *, learning: bool
) -> tuple[list[Outcome], Any]:
    """The tasks as one batch on one RLM; returns the outcomes and the RLM's settings.
    The training arm's batch judges its runs (feedback on); the test arms do not."""
    from rlmrt import RLM, RLMConfig
    from rlmrt.batch import BatchLimits, read_dataset
    from rlmrt.batch.local import LocalExecutor
    from rlmrt.batch.runner import run_batch
    from rlmrt.local.default import use_local_model

    settings = RLMConfig(
        max_wall_time_s=max_wall_s,
        memory_path=workdir / "memory.sqlite",
        trajectory_dir=workdir / "runs",
        learning=learning,
    )
    records = read_dataset(write_dataset(tasks, workdir / f"{arm}.jsonl"))
    by_name = {task.name: task for task in tasks}
    outcomes: list[Outcome] = []
    lost: list[str] = []  # records whose run never had a model reply: run again
    lost_runs: list[str] = []  # their run ids, never judged into lessons

    def progress(result: Any, _summary: Any) -> None:
        why = lost_because(result)
        if why is not None:
            lost.append(result.id)
            lost_runs.append(result.run_id)
            print(f"{arm:8} {result.id:28} lost: {why}; runs again", flush=True)
            return
        outcome = outcome_of(result, by_name[result.id], arm, workdir / "runs")
        outcomes.append(outcome)
        mark = "right" if outcome.right else "wrong"
        print(
            f"{arm:8} {outcome.task:28} {mark:5} {outcome.seconds:6.1f}s it={outcome.iterations}"
            f" calls={outcome.model_calls} lessons={len(outcome.lessons)}"
            f" answer={(outcome.answer or outcome.error or '')[:50]!r}"
            f" expected={outcome.expected!r}",
            flush=True,
        )

    limits = BatchLimits(concurrency=1, match="contains", feedback=arm == "train")
    for attempt in range(LOST_RETRIES + 1):
        # the local server is shared and may be stopped by someone else: a fresh client
        # starts it again, and the records it lost run again
        config, client = use_local_model(settings)
        executor = LocalExecutor(config, RLM(config=config, client=client))
        out = workdir / f"{arm}-results-{attempt}.jsonl"
        try:
            await run_batch(records, out, executor, limits, config, on_result=progress)
        finally:
            await executor.aclose()
        if not lost:
            break
        records, lost = [r for r in records if r.id in lost], []
        await asyncio.sleep(5)
    if lost_runs:  # their feedback (the batch judged them bad) teaches nothing
        from rlmrt.memory import MemoryStore

        with MemoryStore(settings.memory.path) as store:
            store.mark_distilled(lost_runs)
    return outcomes, settings


def lost_because(result: Any) -> str | None:
    """Why a run says nothing about the model (None: it does): the shared model server
    went away, or was busy with other clients' requests the whole run (not one reply)."""
    if result.error and "ModelConnectionError" in result.error:
        return "the model server went away"
    if not int(result.usage.get("input_tokens", 0)):
        return "no model reply within the run's wall time (the shared server was busy)"
    return None


def outcome_of(result: Any, task: Task, arm: str, runs_dir: Path) -> Outcome:
    """A batch result with the run's iterations and recalled lessons from its trajectory."""
    from rlmrt.events import MemoryRecalled, RunFinished
    from rlmrt.observe.trajectory import SUFFIX, iter_events

    iterations, lessons = 0, []
    path = runs_dir / f"{result.run_id}{SUFFIX}"
    if result.run_id and path.is_file():
        for event in iter_events(path):
            if event.call_id != result.run_id:
                continue
            if isinstance(event, RunFinished):
                iterations = event.iterations
            elif isinstance(event, MemoryRecalled) and event.purpose == "lessons":
                lessons = [item["text"] for item in event.items]
    usage = result.usage
    return Outcome(
        task=task.name,
        family=task.family,
        arm=arm,
        right=bool(result.correct),
        answer=result.answer,
        expected=task.answer,
        iterations=iterations,
        model_calls=int(usage.get("model_calls", 0)),
        input_tokens=int(usage.get("input_tokens", 0)),
        output_tokens=int(usage.get("output_tokens", 0)),
        seconds=result.seconds,
        error=result.error,
        lessons=lessons,
    )


async def learn(workdir: Path) -> dict[str, Any]:
    """Distil the training set's judged runs into lessons, with the local model."""
    from rlmrt import RLM, RLMConfig
    from rlmrt.local.default import use_local_model

    config, client = use_local_model(
        RLMConfig(memory_path=workdir / "memory.sqlite", trajectory_dir=workdir / "runs")
    )
    started = time.perf_counter()
    lessons, skipped = [], {}
    for _ in range(SERVER_RETRIES + 1):  # a failed call leaves its run for the next pass
        async with RLM(config=config, client=client) as rlm:
            made = await rlm.alearn()
        lessons += made.lessons
        skipped = made.skipped
        if not any(why.startswith("the model call failed") for why in skipped.values()):
            break
        config, client = use_local_model(config)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "lessons": [
            {"text": item.text, "verdict": item.tags, "runs": item.source_runs} for item in lessons
        ],
        "skipped": skipped,
    }


def summary(outcomes: list[Outcome]) -> str:
    """Markdown: per arm, accuracy and the medians and totals of the run's costs; then
    right answers per family and arm."""
    arms = list(dict.fromkeys(o.arm for o in outcomes))
    rows = [
        "| arm | right | accuracy | iterations (mean) | model calls (total) "
        "| input tokens | output tokens | median s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        mine = [o for o in outcomes if o.arm == arm]
        right = sum(o.right for o in mine)
        rows.append(
            f"| {arm} | {right}/{len(mine)} | {100 * right / len(mine):.0f}%"
            f" | {statistics.mean(o.iterations for o in mine):.1f}"
            f" | {sum(o.model_calls for o in mine)}"
            f" | {sum(o.input_tokens for o in mine):,} | {sum(o.output_tokens for o in mine):,}"
            f" | {statistics.median(o.seconds for o in mine):.1f} |"
        )
    rows += ["", f"| family | {' | '.join(arms)} |", "|---|" + "---|" * len(arms)]
    for family in dict.fromkeys(o.family for o in outcomes):
        cells = []
        for arm in arms:
            theirs = [o for o in outcomes if o.family == family and o.arm == arm]
            cells.append(f"{sum(o.right for o in theirs)}/{len(theirs)}")
        rows.append(f"| {family} | {' | '.join(cells)} |")
    return "\n".join(rows)


async def protocol(args: argparse.Namespace, train: list[Task], test: list[Task]) -> int:
    workdir: Path = args.workdir
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.train_from is None:
        outcomes, _ = await run_arm(train, "train", workdir, args.max_wall_s, learning=False)
    else:
        outcomes = reuse_training(args.train_from, workdir, train)
    report["learned"] = await learn(workdir)
    for lesson in report["learned"]["lessons"]:
        print(f"lesson ({lesson['verdict'][0]}): {lesson['text']}", flush=True)
    # both arms at once: on a shared, busy model server they advance together, so a
    # run cut short leaves both arms with the same tasks done
    arms = await asyncio.gather(
        run_arm(test, "test-off", workdir, args.max_wall_s, learning=False),
        run_arm(test, "test-on", workdir, args.max_wall_s, learning=True),
    )
    for done, _ in arms:
        outcomes += done
    report["outcomes"] = [asdict(o) for o in outcomes]
    (workdir / "learning.json").write_text(json.dumps(report, indent=1))
    print(summary(outcomes))
    return 0


def reuse_training(source: Path, workdir: Path, train: list[Task]) -> list[Outcome]:
    """The training arm of an earlier run of the same set options (`source`): its
    results, trajectories and verdicts, none distilled and no lesson kept, so `learn`
    distils them afresh with the code under test. Only the training arm is reused; both
    test arms run again, side by side."""
    from rlmrt.memory import MemoryStore

    for path in [*source.glob("train-results-*.jsonl"), source / "train.jsonl"]:
        shutil.copy2(path, workdir / path.name)
    shutil.copytree(source / "runs", workdir / "runs")
    with (
        MemoryStore(source / "memory.sqlite") as old,
        MemoryStore(workdir / "memory.sqlite") as new,
    ):
        for entry in old.feedback():
            new.give_feedback(entry)
    outcomes = recorded(workdir, train)
    if len(outcomes) != len(train):
        raise SystemExit(f"{source} holds {len(outcomes)} training results, not {len(train)}")
    return outcomes


def recorded(workdir: Path, tasks: list[Task]) -> list[Outcome]:
    """The outcomes the batches of `workdir` wrote so far (each record's last attempt
    that was not lost): the summary of a run under way or cut short."""
    by_name = {task.name: task for task in tasks}
    outcomes = []
    for arm in ("train", "test-off", "test-on"):
        last: dict[str, Any] = {}
        for path in sorted(workdir.glob(f"{arm}-results-*.jsonl")):
            for line in path.read_text().splitlines():
                result = SimpleNamespace(**json.loads(line))
                if lost_because(result) is None:
                    last[result.id] = result
        outcomes += [outcome_of(r, by_name[r.id], arm, workdir / "runs") for r in last.values()]
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=DEFAULT_FAMILIES, help="comma-separated")
    parser.add_argument("--sizes", default="20000,50000", help="characters, taken in turn")
    parser.add_argument("--per-family", type=int, default=2, help="instances per family and set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-wall-s", type=float, default=150.0, help="a run's wall-time cap")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=BENCH / "results" / "learning",
        help="memory store, trajectories and results (emptied first)",
    )
    parser.add_argument(
        "--train-from",
        type=Path,
        default=None,
        help="reuse the training arm (results, trajectories, verdicts) of an earlier "
        "--workdir with the same set options; lessons are distilled again",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="no runs: summarize what the batches in --workdir recorded (same set options)",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.families.split(",")) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    families = [FAMILIES[name] for name in args.families.split(",")]
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes takes comma-separated integers, got {args.sizes!r}")
    train, test = (make_set(s, families, sizes, args.seed, args.per_family) for s in SETS)
    check_disjoint(train, test)
    if args.summary:
        print(summary(recorded(args.workdir, train + test)))
        return 0
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    return asyncio.run(protocol(args, train, test))


if __name__ == "__main__":
    sys.exit(main())
