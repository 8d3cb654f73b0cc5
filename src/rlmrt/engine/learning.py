"""Learning from feedback: each run judged good or bad becomes one short lesson, kept as
procedural memory (kind "lesson") with the run as its source. Runs then see the lessons
most like their question (see `recall.py`).

A good run whose trajectory shows the code that found its answer (`worked_example.py`)
becomes a worked example: a model call writes one sentence on what the code fits, and
the lesson carries the question, the data's first line and that code as it ran. Any
other judged run gets a lesson written by a model call from what the run was asked,
the code it ran and how it ended."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.config import RLMConfig
from rlmrt.engine.answers import non_answer
from rlmrt.engine.context_input import first_line
from rlmrt.engine.worked_example import answering_code, quotes
from rlmrt.errors import ModelError
from rlmrt.events import Answer, CodeExecuted, RunStarted
from rlmrt.llm.base import Message, ModelClient
from rlmrt.memory import Feedback, MemoryItem, MemoryStore
from rlmrt.observe.trajectory import SUFFIX, iter_events

MAX_CODE_CHARS = 1_500
MAX_OUTPUT_CHARS = 300
MAX_BLOCKS = 6
MAX_LESSON_CHARS = 600
SHAPE_LINES = 3  # lines of the context's preview shown as its data shape
SHAPE_LINE_CHARS = 160
DISTILL_CONCURRENCY = 4
MAX_SENTENCE_CHARS = 300  # a worked example's own sentence

DISTILL_PROMPT = """\
A language model answered a question about a large text by writing Python code in a \
REPL where the text is the variable `context`. The run was judged {verdict}.

Question: {question}
{context_shape}
Code it ran, in order (with the start of each output):
{code}

Its answer: {answer}
{expected}{note}
Write ONE lesson of at most three sentences for future runs on similar questions and \
data. Start with the data's shape as it looks (its format and how a record is written, \
e.g. "Lines like `date [LEVEL] text`:"), then {ask} Give the code shape concretely (how \
to split, filter, compare, count), as a short Python expression where one fits. Do not \
mention this run's particular values or answer. Reply with the lesson only."""

REWRITE_PROMPT = """\
Your lesson quotes this run's own answer ({value}). Rewrite it so it fits runs on other \
data: keep the data's shape and the code shape, and leave out this run's values and \
answer. Reply with the lesson only."""

ASK_GOOD = "what approach worked, so it can be reused."
ASK_BAD = "what went wrong and what to do instead."

EXAMPLE_PROMPT = """\
A language model answered a question about a large text by writing Python code in a \
REPL where the text is the variable `context`. This code found the right answer.

Question: {question}
{context_shape}
```python
{code}
```

In ONE sentence of at most 30 words, say which kind of question and data this code \
fits and the idea it uses, e.g. "To count records by a field in `a | b | STATUS` \
lines, split each line on '|' and compare that field exactly." Do not mention this \
run's particular values or answer. Reply with the sentence only."""

EXAMPLE_LESSON = """\
{sentence}
Worked example: asked "{question}" of data with lines like `{first_line}`, this code \
found the right answer:
```repl
{code}
```"""


@dataclass(frozen=True, slots=True)
class Distilled:
    """What one `distill_lessons` pass made and what it could not use (and why)."""

    lessons: list[MemoryItem]
    skipped: dict[str, str]  # run id -> reason


async def distill_lessons(
    store: MemoryStore, client: ModelClient, config: RLMConfig, *, limit: int = 50
) -> Distilled:
    """One lesson per judged run not distilled yet (at most `limit`), each stored and
    its feedback marked distilled; a failed model call leaves its run for next time."""
    pending = store.feedback(distilled=False)[:limit]
    gate = asyncio.Semaphore(DISTILL_CONCURRENCY)

    async def one(entry: Feedback) -> tuple[Feedback, str | None, str | None]:
        run = read_judged_run(entry, config.trajectory.dir)
        example = (
            answering_code(run.blocks, entry.answer, ended_by_code=run.ended_by_code)
            if entry.verdict == "good"
            else None
        )
        prompt = (
            distill_prompt(entry, run)
            if example is None
            else EXAMPLE_PROMPT.format(
                question=entry.prompt or "(not recorded)", context_shape=run.shape, code=example
            )
        )
        messages: list[Message] = [{"role": "user", "content": prompt}]
        async with gate:
            try:
                lesson = await _ask(client, messages)
                quoted = quoted_value(lesson, entry)
                if quoted is not None:  # once more, told what it quoted
                    messages.append({"role": "assistant", "content": lesson})
                    messages.append(
                        {"role": "user", "content": REWRITE_PROMPT.format(value=quoted)}
                    )
                    lesson = await _ask(client, messages)
            except ModelError as exc:
                return entry, None, f"the model call failed: {exc}"
        why = non_answer(lesson, entry.prompt or "") if lesson else "empty"
        if why is not None and why != "code":  # a lesson may well name code
            return entry, None, f"the model's reply was {why}"
        quoted = quoted_value(lesson, entry)
        if quoted is not None:
            return entry, None, f"the lesson quoted the run's own answer {quoted!r}"
        if example is None:
            return entry, lesson[:MAX_LESSON_CHARS], None
        return entry, worked_lesson(lesson, entry, run, example), None

    lessons: list[MemoryItem] = []
    skipped: dict[str, str] = {}
    distilled: list[str] = []
    for entry, lesson, why in await asyncio.gather(*(one(e) for e in pending)):
        if lesson is None:
            skipped[entry.run_id] = why or "no lesson"
            continue
        lessons.append(
            store.remember(lesson, kind="lesson", tags=[entry.verdict], source_runs=[entry.run_id])
        )
        distilled.append(entry.run_id)
    store.mark_distilled(distilled)
    return Distilled(lessons, skipped)


async def _ask(client: ModelClient, messages: list[Message]) -> str:
    reply = await client.complete(messages, temperature=0.0, max_tokens=200)
    return reply.text.strip().strip('"').strip()


def quoted_value(lesson: str, entry: Feedback) -> str | None:
    """The run's answer or expected answer when `lesson` quotes it as a whole token: a
    lesson that carries one run's value ("the answer is 138") misleads runs on other
    data. Single digits and long texts are not checked (`split()[1]` is no quote)."""
    for value in (entry.answer, entry.expected):
        if quotes(lesson, value):
            return (value or "").strip()
    return None


def context_shape(meta: dict[str, Any]) -> str:
    """The context as the distilling call sees it: its type, size and first lines (the
    data's shape, which a lesson names so that it fits runs on data like it)."""
    shape = f"The context: {meta.get('type', '?')}, {meta.get('total_length', '?')} characters."
    preview = meta.get("preview")
    if isinstance(preview, str) and preview.strip():
        lines = [line[:SHAPE_LINE_CHARS] for line in preview.splitlines()[:SHAPE_LINES]]
        shape += " It starts:\n" + "\n".join(lines)
    return shape + "\n"


@dataclass(frozen=True, slots=True)
class JudgedRun:
    """What a judged run's trajectory says: its context's shape (as `context_shape`
    gives it), the context's first line, and the root run's code blocks in order."""

    shape: str = ""
    first_line: str = ""
    blocks: tuple[CodeExecuted, ...] = ()
    ended_by_code: bool = False  # the answer came from the last block's FINAL


def read_judged_run(entry: Feedback, runs_dir: Path) -> JudgedRun:
    """The judged run as its trajectory file shows it (empty when the file is gone)."""
    path = runs_dir / f"{entry.run_id}{SUFFIX}"
    if not path.is_file():
        return JudgedRun()
    shape, sample, blocks, by_code = "", "", [], False
    for event in iter_events(path):
        if isinstance(event, RunStarted) and event.call_id == entry.run_id:
            shape = context_shape(event.context_metadata)
            sample = first_line(event.context_metadata, SHAPE_LINE_CHARS)
        if isinstance(event, CodeExecuted) and event.depth == 0:
            blocks.append(event)
        if isinstance(event, Answer) and event.call_id == entry.run_id:
            by_code = event.source == "code"
    return JudgedRun(shape, sample, tuple(blocks), by_code)


def worked_lesson(sentence: str, entry: Feedback, run: JudgedRun, code: str) -> str:
    """A good run's lesson: the model's sentence, then the question, the data's first
    line and the code that answered it."""
    sentence = " ".join(sentence.split())
    if len(sentence) > MAX_SENTENCE_CHARS:
        sentence = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."
    return EXAMPLE_LESSON.format(
        sentence=sentence,
        question=" ".join((entry.prompt or "").split()),
        first_line=run.first_line.replace("`", "'") or "(not recorded)",
        code=code,
    )


def distill_prompt(entry: Feedback, run: JudgedRun) -> str:
    """The distilling call's prompt for one judged run (its code from its trajectory
    when the file is there)."""
    blocks = [
        f"```python\n{event.code[:MAX_CODE_CHARS]}\n```\n-> "
        + (event.error or event.stdout or "(no output)")[:MAX_OUTPUT_CHARS]
        for event in run.blocks[:MAX_BLOCKS]
    ]
    return DISTILL_PROMPT.format(
        verdict=entry.verdict,
        question=entry.prompt or "(not recorded)",
        context_shape=run.shape,
        code="\n\n".join(blocks) or "(no code recorded)",
        answer=entry.answer if entry.answer is not None else "(none)",
        expected=f"The right answer: {entry.expected}\n" if entry.expected else "",
        note=f"The judge's note: {entry.note}\n" if entry.note else "",
        ask=ASK_GOOD if entry.verdict == "good" else ASK_BAD,
    )
