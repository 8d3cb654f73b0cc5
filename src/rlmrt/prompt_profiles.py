"""Prompt profiles: what the engine adds to its prompts for a family of models.

Small local models (1-3B parameters) write correct code but drift: they answer a
question of their own, repeat a failing block, or FINAL before reading an output.
The "small" profile adds short rules to the system prompt and restates the question
after every output. `prompt_profile = "auto"` picks it from the model's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rlmrt.errors import ConfigError

__all__ = ["PROFILES", "PromptProfile", "profile_for"]


@dataclass(frozen=True, slots=True)
class PromptProfile:
    name: str
    extra_rules: str = ""
    remind_question: bool = False  # restate the question after every output
    # FINAL(x) from code ends the run only once x was in an output the model saw; a
    # block that is only a value the model saw printed is taken as its answer
    checked_final: bool = False
    # the first prompt shows this many lines of a text `context` that share the most
    # rare words with the question (`evidence.peek_lines`)
    peek_lines: int = 0
    # of a reply with several code blocks only the first runs, and the reply is kept
    # only up to it (small models go on to write the "output" they expect, and more
    # blocks built on it); with one block per reply, a reply that repeats an earlier
    # block is dropped from the conversation (`run._forget_repeat`)
    first_block_only: bool = False
    # the system prompt lists the REPL's `memory` when the run's code may use it (the
    # small profile does not: a longer function list has not been measured to help it)
    lists_memory: bool = True


SMALL_RULES = """
Rules (follow them exactly):
- Reply with one ```repl block of Python, or with FINAL(answer) once you know the answer.
- Use the simplest code: to count or find lines, filter context.splitlines() with `in` \
or a regex and print the count or the lines. Do not parse every field.
- To take a value out of a line, match the words next to it, e.g. \
re.search(r"price: (\\d+)", line), never a position like line.split()[-1].
- print() every value you need and read the output before you answer.
- If code fails, print a few raw lines of `context` to see its real format, then fix \
the code. Never run the same code twice.
- Only FINAL a value you saw printed. Answer the question you were asked.
"""

PROFILES = {
    "default": PromptProfile("default"),
    "small": PromptProfile(
        "small",
        extra_rules=SMALL_RULES,
        remind_question=True,
        checked_final=True,
        peek_lines=5,
        first_block_only=True,
        lists_memory=False,
    ),
}
# a parameter count of at most 4B in the model's name: "qwen2.5-coder-1.5b", "phi-3b"
_SMALL_NAME = re.compile(r"(?<![\d.])(?:0?\.\d+|[1-4](?:\.\d+)?)b(?![a-z0-9])")


def profile_for(model: str | None, setting: str = "auto") -> PromptProfile:
    """The profile named by `setting`; for "auto", "small" when the model's name says it
    has at most 4B parameters, else "default"."""
    if setting != "auto":
        try:
            return PROFILES[setting]
        except KeyError:
            known = ", ".join(["auto", *PROFILES])
            raise ConfigError(
                f"unknown prompt_profile {setting!r}; choose one of: {known}"
            ) from None
    name = (model or "").lower().rsplit("/", 1)[-1]
    return PROFILES["small" if _SMALL_NAME.search(name) else "default"]
