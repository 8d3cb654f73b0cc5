"""Helpers for scripting the root model in engine tests."""

from __future__ import annotations

import re

from rlmrt.testing import ChatRequest


def repl(code: str) -> str:
    """A reply holding one ```repl block."""
    return f"```repl\n{code}\n```"


def question(request: ChatRequest) -> str:
    """The question of the run a root-model request belongs to."""
    match = re.search(r"Question: (.*)", request.messages[1]["content"])
    assert match is not None
    return match.group(1)


def turn(request: ChatRequest) -> int:
    """How many replies the root model already gave in this run."""
    return sum(1 for m in request.messages if m["role"] == "assistant")
