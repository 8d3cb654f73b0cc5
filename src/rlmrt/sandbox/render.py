"""How a sandbox turns a value into the final-answer string (shared by every backend)."""

from __future__ import annotations

import json

__all__ = ["render_value"]

_JSON_TYPES = (dict, list, tuple, int, float, bool)


def render_value(value: object) -> str:
    """Render `value` for `FINAL(...)` / `FINAL_VAR(...)`.

    Strings are returned as they are; dicts, lists, tuples, numbers, booleans and None
    as JSON (`ensure_ascii=False`) when they serialise; anything else as its `repr`.
    """
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, _JSON_TYPES):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            pass
    try:
        return repr(value)
    except ValueError:
        # ints past the str-conversion digit limit refuse repr()
        if isinstance(value, int):
            return f"<int with {value.bit_length()} bits>"
        raise
