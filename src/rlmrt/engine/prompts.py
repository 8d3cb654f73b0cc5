"""The words the engine says to the root model."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rlmrt.engine.context_input import describe_for_prompt
from rlmrt.llm.base import Message
from rlmrt.sandbox.kernel import HELPER_NAMES

SYSTEM_PROMPT = """\
You are answering a question about a context that is too large to read directly. \
The context is loaded in a Python REPL as the variable `context`; you see only its \
metadata. Work by writing Python code in ```repl fenced blocks; the code runs and you \
see what it prints. Variables persist between blocks.

Functions available in the REPL:
- llm_query(prompt, model=None) -> str: ask a language model one question. Its \
window holds about {sub_window} characters, so send it chunks of the context, not all of it.
- llm_query_batched(prompts, model=None) -> list[str]: many llm_query calls at once, \
run concurrently (much faster than a loop). Failed items are Exception objects: check \
with isinstance(r, Exception).
- rlm_query(prompt, context=None) -> str: start a recursive sub-run that has its own \
REPL with `context` loaded (use it for sub-problems that are themselves large).
- rlm_query_batched(prompts, contexts=None) -> list[str]: many rlm_query calls at once.
{context_search}- FINAL(value): give the final answer and end the run.
- FINAL_VAR(name): give the value of the variable called `name` (a string) as the \
final answer.
- SHOW_VARS(): list the variables you have defined.

How to work:
1. Look at the context first (its type, its length, a few slices); print what you need \
to see. Output longer than {max_output_chars} characters is truncated.
2. Use Python (slicing, re, counting) where it is exact; use llm_query on chunks where \
understanding is needed; combine the results in code.
3. When the answer is known, call FINAL(answer) or FINAL_VAR("name") inside a ```repl \
block. Do not guess the answer in the same reply as code whose output you have not seen.

Example:
```repl
chunks = [context[i:i + 50000] for i in range(0, len(context), 50000)]
answers = llm_query_batched([f"List the dates mentioned in:\\n{{c}}" for c in chunks])
print(answers[:2])
```
"""

NO_CODE_FEEDBACK = (
    "Your reply had no ```repl code block and no FINAL(...). Write Python code in a "
    "```repl block to work on `context`, or give the answer with FINAL(answer)."
)

DEFERRED_FINAL_NOTE = (
    "Note: your FINAL(...) was not accepted because it was written in the same reply as "
    "code, before you saw the code's output. Check the output above; if the answer "
    "stands, give FINAL(...) again."
)

EMPTY_OUTPUT_NOTE = "(the code ran and printed nothing; use print() to see values)"

REPEATED_FAILURE_NOTE = (
    "Note: you ran exactly this code before (iteration {iteration}{again}) and it failed the "
    "same way. Running it again cannot help: find the cause in the error and change the code."
)

REPEATED_CODE_NOTE = (
    "Note: you ran exactly this code before (iteration {iteration}{again}). Use its output to "
    "make progress, or give FINAL(answer) if you know the answer."
)

REPEATED_CODE_SUMMARY = (
    "(I ran a code block here; it printed {output}. Running it again gives the same, so I "
    "will write different code.)"
)

ECHOED_SUMMARY_NOTE = (
    "Note: your reply had no code; it only repeated the runtime's summary of a block you "
    "ran before ({times} time(s) now). Write a ```repl block with different code, or give "
    "FINAL(answer)."
)

PARTIAL_FINAL_NOTE = (
    "Your code called FINAL({answer}), but {answer} appears only as part of {whole}, "
    "so the run goes on. Check that your code takes the whole value, then reply "
    "FINAL(value)."
)

_UNDEFINED = re.compile(r"NameError: name '(\w+)' is not defined")


def misnamed_helper_note(error: str) -> str | None:
    """A note when code called a REPL helper by a wrongly cased name (`Final(x)`):
    Python's own suggestion does not reach that far."""
    match = _UNDEFINED.search(error)
    if match is None:
        return None
    name = match.group(1)
    for helper in HELPER_NAMES:
        if helper.lower() == name.lower() and helper != name:
            return f"(Note: the helper is called {helper}; names are case-sensitive.)"
    return None


PEEK_NOTE = (
    "Some lines of `context` that share words with the question (found by the runtime; "
    "they show the format, and may or may not hold the answer):\n"
)

QUESTION_REMINDER = "(The question: {prompt})"

EMPTY_RESULT_NOTE = (
    "Your code printed {output}: it found nothing. But `context` does have lines about the "
    "question, for example:\n{lines}\nCompare your code with their exact format (separators, "
    "spacing, case, which field holds what), fix it and run it again."
)

NEAR_MISS_NOTE = (
    "Check this result: your code tests for {literal} as a part of the text, and in "
    "`context` {literal} is also a part of other values: {others} (lines with {literal} on "
    "its own: {exact:,}). If the question means exactly {literal}, test whole values, "
    "for example `{test}`, and run it again."
)

WHOLE_VALUE_RESULT_NOTE = (
    "The runtime ran your code again with whole-value tests; it printed:\n{output}"
)

NOT_AN_ANSWER_NOTE = (
    "FINAL({answer}) is {reason}, not an answer to the question. Reply with the answer "
    "itself: FINAL(value), or run code to find it."
)

DOUBTED_FINAL_NOTE = (
    "FINAL({answer}) is not accepted yet: {answer} came from code whose result is in doubt "
    "(see the note above). Check it with different code (for example, print a few lines "
    "your filter should match) before you answer."
)

UNSEEN_FINAL_NOTE = (
    "Your code called FINAL({answer}) before you saw that value, so the run goes on. "
    "If you are sure it answers the question, reply exactly FINAL({answer}); if not, "
    "fix the code."
)

UNSEEN_FINAL_LINES_NOTE = (
    "Your code called FINAL({answer}) before you saw that value, so the run goes on. "
    "It is in `context` here:\n{lines}\nIf it answers the question, reply exactly "
    "FINAL({answer}); if not, reply FINAL(the right value) from these lines."
)

BEST_EFFORT_PROMPT = (
    "The run has reached a limit ({reason}) and cannot execute more code. From what you "
    "have learned so far, give your best final answer now, as FINAL(your answer), "
    "without any code."
)


COMPACT_PROMPT = (
    "This conversation is about to outgrow your context window, so it will be restarted. "
    "Summarise your progress so far: what you have found (with exact values), which "
    "REPL variables hold your intermediate results, and what remains to do. Write only "
    "the summary, no code."
)

COMPACTED_NOTE = (
    "The conversation was compacted to fit your context window. Your summary of the "
    "work so far is above; the full earlier conversation is in the REPL variable "
    "`conversation_log` (a list of {'role', 'content'} dicts), and every variable you "
    "defined still exists. Continue from here."
)


CONTEXT_SEARCH_LINE = """\
- context_search(query, max_tokens=2000) -> list[dict]: search the project's files (an \
index outside `context`) for the passages that matter to `query`, best first, within \
about `max_tokens` tokens in all. Each hit is a dict with keys source, start_line, \
end_line, title, text, score.
"""

MEMORY_LINES = """\
- memory: the project's memory, kept between runs. memory.remember(text, tags=None, \
pin=False) -> id keeps a finding worth reusing (a data format, a method that worked); \
memory.recall(query, k=5) -> list[dict] searches it (keys id, text, kind, tags, pinned); \
memory.forget(id) removes an item.
"""

TOOLS_LINES = """\
- tools: functions that run on the host, called from code as tools.NAME(...) with the \
arguments shown (in loops if need be). tools.batch([("NAME", {{"arg": value}}), ...]) \
runs many calls at once and returns their results in order (failed items are Exception \
objects). The tools:
{lines}
"""


def system_prompt(
    *,
    max_output_chars: int,
    sub_window_chars: int = 400_000,
    context_search: bool = False,
    extra_rules: str = "",
    tools: Sequence[str] = (),
    memory: bool = False,
) -> str:
    """The root model's instructions; `context_search` lists that REPL function (only
    when a context provider is configured); `tools` are the offered tools' lines
    (`ToolBox.prompt_lines`; none: the prompt does not mention tools); `memory` lists
    the REPL's `memory` (when the run's code may use it); `extra_rules` come from the
    prompt profile."""
    functions = CONTEXT_SEARCH_LINE if context_search else ""
    if memory:
        functions += MEMORY_LINES
    if tools:
        functions += TOOLS_LINES.format(lines="\n".join(f"  - {line}" for line in tools))
    return (
        SYSTEM_PROMPT.format(
            sub_window=f"{sub_window_chars:,}",
            max_output_chars=max_output_chars,
            context_search=functions,
        )
        + extra_rules
    )


OUTPUT_INVALID_NOTE = (
    "Your FINAL value does not have the answer's type:\n{errors}\n"
    "Fix the value in a ```repl block and give it again with FINAL(value)."
)


def _start_line(metadata: Mapping[str, Any], tools: Sequence[str]) -> str:
    """How the first reply should begin: with `context`, or also with the tools when
    some are offered, named here by the question (a small model reads the system
    prompt's list as background); only with them when there is no `context`."""
    if not tools:
        return "Start by exploring `context` in a ```repl block."
    names = ", ".join(line.split("(", 1)[0] for line in tools)  # "tools.NAME(...): ..."
    if metadata.get("type") == "none":
        return f"There is no `context`: answer by calling the tools ({names}) in a ```repl block."
    return f"Start by exploring `context`, or by calling the tools ({names}), in a ```repl block."


def first_messages(
    prompt: str,
    metadata: Mapping[str, Any],
    *,
    max_output_chars: int,
    depth: int,
    session_note: str | None = None,
    context_search: bool = False,
    extra_rules: str = "",
    peek: Sequence[str] = (),
    answer_type: str | None = None,
    memory_note: str = "",
    tools: Sequence[str] = (),
    memory: bool = False,
) -> list[Message]:
    where = "" if depth == 0 else f" (this is a recursive sub-run at depth {depth})"
    note = f"{session_note}\n\n" if session_note else ""
    typed = f"{answer_type}\n\n" if answer_type else ""
    if memory_note:
        note += memory_note + "\n\n"
    if peek:
        note += PEEK_NOTE + "\n".join(peek) + "\n\n"
    user = (
        f"Metadata of `context`{where}:\n{describe_for_prompt(metadata)}\n\n"
        f"{note}"
        f"Question: {prompt}\n\n"
        f"{typed}"
        f"{_start_line(metadata, tools)}"
    )
    return [
        {
            "role": "system",
            "content": system_prompt(
                max_output_chars=max_output_chars,
                context_search=context_search,
                extra_rules=extra_rules,
                tools=tools,
                memory=memory,
            ),
        },
        {"role": "user", "content": user},
    ]


def compacted_messages(first: list[Message], summary: str) -> list[Message]:
    """The restarted conversation: system prompt, metadata and question, the summary."""
    return [
        *first[:2],
        {"role": "assistant", "content": summary},
        {"role": "user", "content": COMPACTED_NOTE},
    ]


def session_note(contexts: Mapping[str, Mapping[str, Any]], exchanges: int) -> str:
    """What a session's root model is told about its REPL beyond `context`."""
    lines = ["This run is part of a session; the REPL keeps its variables between questions."]
    lines.append("Contexts available:")
    for name, meta in contexts.items():
        lines.append(f"- {name}: {meta['type']}, {meta['total_length']:,} characters")
    lines.append(
        f"`history` is a list of the {exchanges} earlier exchange(s) of this session, "
        "each a dict with keys prompt, answer, partial, run_id."
    )
    return "\n".join(lines)
