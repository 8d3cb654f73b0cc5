"""Asking a model for JSON of a schema: OpenAI's `response_format`, and the spelling of
it llama-cpp-python's server takes.

The engine asks in OpenAI's form, which both clients pass on (LiteLLM translates it for
the providers it knows); the local model's client rewrites it for its server, whose
grammar then makes the reply fit the schema token by token."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["json_schema_format", "llama_cpp_format"]

_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def json_schema_format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """OpenAI's ``{"type": "json_schema", ...}`` for `schema`. Not ``strict``: strict
    mode takes only schemas whose objects list every key as required and allow no
    other, which a user's type need not be; the host validates the reply anyway."""
    wire_name = _NAME.sub("_", name).strip("_")[:64] or "output"
    return {"type": "json_schema", "json_schema": {"name": wire_name, "schema": schema}}


def llama_cpp_format(response_format: dict[str, Any]) -> dict[str, Any]:
    """`response_format` as llama-cpp-python's server (0.3) takes it: its request model
    knows only ``"text"`` and ``"json_object"`` (with the schema beside the type), and
    refuses OpenAI's ``"json_schema"`` with a 422."""
    if response_format.get("type") != "json_schema":
        return response_format
    schema = response_format.get("json_schema", {}).get("schema")
    if schema is None:
        return {"type": "json_object"}
    return {"type": "json_object", "schema": schema}
