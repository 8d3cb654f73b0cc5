"""What is not an answer, whatever the model says.

Small models end runs with text that only looks like an answer: a line of code
(``repl\\nllm_query("What is ...")``), the question restated, a refusal ("I'm sorry, but
I don't have enough information"), an error message, or what a failed search printed
("Pattern not found"). Returned as the answer, such text misleads the user, so the loop
refuses it (and a best-effort reply of that kind leaves the run partial with no answer).
"""

from __future__ import annotations

import re

__all__ = ["non_answer"]

_CODE = re.compile(
    r"(?:^|\n)\s*(?:repl|python)\s*(?:\n|$)"  # a fence's language tag left behind
    r"|\b(?:llm_query|rlm_query|llm_query_batched|rlm_query_batched|context_search|FINAL_VAR"
    r"|SHOW_VARS)\s*\("
    r"|\bprint\s*\(|\bcontext\s*\[",
    re.MULTILINE,
)
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i do not have|i don'?t have"
    r"|as an ai|unfortunately,? i)",
    re.IGNORECASE,
)
_ERROR = re.compile(r"^\s*(?:Traceback \(most recent call last\)|[A-Z]\w*(?:Error|Exception): )")
_NOTHING_FOUND = re.compile(
    r"^\W*(?:\w+\s+){0,3}(?:not found|no (?:match(?:es)?|results?)(?: found)?|nothing found"
    r"|none found)(?:\s+\w+){0,3}\W*$",
    re.IGNORECASE,
)  # what a search that failed prints: "Pattern not found", "No matches found."
_WORD = re.compile(r"\w+")


def says_nothing_found(text: str) -> bool:
    """Whether `text` is a search's message that it found nothing ("Pattern not found")."""
    return _NOTHING_FOUND.search(text) is not None


def non_answer(answer: str, question: str) -> str | None:
    """Why `answer` is not an answer to `question` ("code", "the question", "a refusal",
    "an error message"), or None when it may be one."""
    text = answer.strip()
    if _ERROR.search(text):
        return "an error message"
    if _REFUSAL.search(text):
        return "a refusal"
    if says_nothing_found(text):
        return "a message that nothing was found"
    if _CODE.search(text):
        return "code"
    words, asked = _WORD.findall(text.lower()), _WORD.findall(question.lower())
    if len(words) >= 4 and words == asked[: len(words)]:
        return "the question"
    return None
