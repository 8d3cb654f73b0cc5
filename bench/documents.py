"""Questions over documents on the local model: a 500-page PDF and a sectioned DOCX.

A document context reaches the REPL as a list of texts (a PDF's pages, a DOCX's
sections), not as one text. Each task writes its document (fpdf2, python-docx) from a
seed, with a known answer, and runs one RLM completion on the local model
(`use_local_model` over a default `RLMConfig`, a wall-time cap added). One task shape
is the tuning half (the one the list peek was written against: counting pages by a
field's value); the others are held out and reported apart.

    PYTHONPATH=src .venv/bin/python bench/documents.py [--tasks a,b] [--seeds 1,2]
        [--wall 300] [--out results.jsonl]
    PYTHONPATH=src .venv/bin/python bench/documents.py --check   # no model: the answers

Compare two versions side by side by running it with each version's `src` on
PYTHONPATH, one after the other, on an otherwise idle model server.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAGES = 500
INSPECTORS = ["Ito", "Marsh", "Okafor", "Lind", "Brandt", "Saari"]
FILLER = " ".join(["Routine checks were recorded and signed off."] * 6)


@dataclass(frozen=True)
class Task:
    name: str
    split: str  # "tuning" or "heldout"
    question: str
    path: Path
    expected: str


def _pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))


def _report_pages(rng: random.Random) -> list[dict[str, object]]:
    return [
        {
            "page": n,
            "site": f"plant-{rng.randint(1, 40):02d}",
            "inspector": rng.choice(INSPECTORS),
            "result": rng.choice(["PASS"] * 5 + ["FAIL"]),
            "pressure": round(rng.uniform(1.0, 9.0), 2),
        }
        for n in range(1, PAGES + 1)
    ]


def _page_text(page: dict[str, object]) -> str:
    return (
        f"Inspection report, page {page['page']} of {PAGES}\nSite: {page['site']}\n"
        f"Inspector: {page['inspector']}\nResult: {page['result']}\n"
        f"Pressure reading: {page['pressure']} bar\n{FILLER}"
    )


def pdf_fail_count(rng: random.Random, folder: Path) -> Task:
    pages = _report_pages(rng)
    _pdf(path := folder / "inspections.pdf", [_page_text(p) for p in pages])
    fails = sum(p["result"] == "FAIL" for p in pages)
    question = "How many pages of the report have the result FAIL? Answer with the number."
    return Task("pdf_fail_count", "tuning", question, path, str(fails))


def pdf_inspector_count(rng: random.Random, folder: Path) -> Task:
    pages = _report_pages(rng)
    _pdf(path := folder / "inspections.pdf", [_page_text(p) for p in pages])
    who = rng.choice(INSPECTORS)
    count = sum(p["inspector"] == who for p in pages)
    question = f"How many pages of the report were inspected by {who}? Answer with the number."
    return Task("pdf_inspector_count", "heldout", question, path, str(count))


def pdf_permit_lookup(rng: random.Random, folder: Path) -> Task:
    pages = _report_pages(rng)
    texts = [_page_text(p) for p in pages]
    at = rng.randrange(100, PAGES)
    permit = f"PX-{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGHJK')}"
    texts[at] += f"\nThe renewed operating permit for this site is {permit}."
    _pdf(path := folder / "inspections.pdf", texts)
    question = "What is the renewed operating permit number mentioned in the report?"
    return Task("pdf_permit_lookup", "heldout", question, path, permit)


def docx_decision_count(rng: random.Random, folder: Path) -> Task:
    from docx import Document

    document = Document()
    rejected = 0
    for n in range(1, 201):
        decision = rng.choice(["APPROVED", "APPROVED", "DEFERRED", "REJECTED"])
        rejected += decision == "REJECTED"
        document.add_heading(f"Proposal {n}", level=2)
        document.add_paragraph(f"Submitted by team {rng.choice('ABCDEFG')}. {FILLER}")
        document.add_paragraph(f"Board decision: {decision}")
    document.save(str(path := folder / "minutes.docx"))
    question = "How many proposals did the board reject? Answer with the number."
    return Task("docx_decision_count", "heldout", question, path, str(rejected))


TASKS: dict[str, Callable[[random.Random, Path], Task]] = {
    "pdf_fail_count": pdf_fail_count,
    "pdf_inspector_count": pdf_inspector_count,
    "pdf_permit_lookup": pdf_permit_lookup,
    "docx_decision_count": docx_decision_count,
}


def make_task(name: str, seed: int, folder: Path) -> Task:
    return TASKS[name](random.Random(f"{name}-{seed}"), folder)


@dataclass
class Outcome:
    task: str
    split: str
    seed: int
    right: bool
    seconds: float
    stop_reason: str
    iterations: int
    answer: str | None
    expected: str


def right(answer: str | None, expected: str) -> bool:
    if answer is None:
        return False
    text = answer.replace(",", "").strip().rstrip(".")
    return text == expected or expected in text.split()


def run(task: Task, seed: int, wall_s: float) -> Outcome:
    from rlmrt import RLM, RLMConfig
    from rlmrt.local.default import use_local_model

    config, client = use_local_model(RLMConfig(max_wall_time_s=wall_s))
    rlm = RLM(config=config, client=client)
    started = time.perf_counter()
    try:
        result = rlm.completion(task.question, task.path)
    except Exception as exc:  # a failed run is wrong, with its reason
        seconds = time.perf_counter() - started
        return Outcome(task.name, task.split, seed, False, seconds, "error", 0, str(exc), "")
    finally:
        rlm.close()
    seconds = time.perf_counter() - started
    return Outcome(
        task.name,
        task.split,
        seed,
        right(result.answer, task.expected) and not result.partial,
        seconds,
        result.stop_reason,
        result.iterations,
        result.answer,
        task.expected,
    )


def summary(outcomes: list[Outcome]) -> None:
    print("\n| half | runs | right | median s | median iterations |")
    print("|---|---|---|---|---|")
    for split in ("tuning", "heldout"):
        rows = [o for o in outcomes if o.split == split]
        if rows:
            n = len(rows)
            print(
                f"| {split} | {n} | {sum(o.right for o in rows)}/{n} |"
                f" {statistics.median(o.seconds for o in rows):.0f} |"
                f" {statistics.median(o.iterations for o in rows):.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--wall", type=float, default=300.0, help="wall-time cap per run, s")
    parser.add_argument("--check", action="store_true", help="no model: write and load each")
    parser.add_argument("--out", default=None, help="append each outcome as a JSON line here")
    args = parser.parse_args()
    outcomes: list[Outcome] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.tasks.split(","):
            with tempfile.TemporaryDirectory(prefix="rlmrt-documents-") as folder:
                task = make_task(name, seed, Path(folder))
                if args.check:
                    from rlmrt.engine.context_input import load_context

                    items = load_context(task.path).value
                    assert isinstance(items, list) and all(isinstance(i, str) for i in items)
                    assert task.expected in "\n".join(items) or task.expected.isdigit()
                    print(f"{name:20} seed {seed} {len(items)} items, expected {task.expected}")
                    continue
                outcome = run(task, seed, args.wall)
            outcomes.append(outcome)
            line = json.dumps(outcome.__dict__, ensure_ascii=False)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as handle:
                    handle.write(line + "\n")
    if outcomes:
        summary(outcomes)


if __name__ == "__main__":
    main()
