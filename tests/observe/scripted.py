"""Scripted model replies that the observe tests share."""

from __future__ import annotations

from rlmrt.testing import ChatRequest

MODEL = "openai/test-model"
# USD per million tokens, so the scripted model has a price
PRICES = {MODEL: {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}}


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def one_sub_call(request: ChatRequest) -> str:
    """Root: one block with an llm_query, then FINAL('done'). Sub-calls: "hi"."""
    if not request.is_rlm_root:
        return "hi"
    if any(m["role"] == "assistant" for m in request.messages):
        return repl("FINAL('done')")
    return repl("print(llm_query('a'))")


def with_child_run(request: ChatRequest) -> str:
    """Root: one block with an llm_query and an rlm_query, then FINAL of the context in
    capitals. The child run answers at once."""
    if not request.is_rlm_root:
        return "hi"
    if "depth 1" in request.messages[1]["content"]:
        return "FINAL(low)"
    if any(m["role"] == "assistant" for m in request.messages):
        return repl("FINAL(context.upper())")
    return repl("print(llm_query('say hi'), rlm_query('look', context=context[:3]))")
