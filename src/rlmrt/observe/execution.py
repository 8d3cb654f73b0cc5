"""What a code execution's error text says: its exception type and the sandbox limit it
hit. The sandbox reports errors as text for the model (`ExecResult.error`); spans and
metrics need the two as labels."""

from __future__ import annotations

# The last line of a limit error names the limit (see the kernel's `_format_error` and
# the in-process sandbox): "TimeoutError: ... time limit (timeout_s)", "... (cpu_s limit)",
# "MemoryError: ... (memory_mb=512 limit)".
_LIMIT_MARKS = (
    ("cpu_s limit", "cpu_s"),
    ("memory_mb=", "memory_mb"),
    ("time limit", "exec_timeout_s"),
    ("file_bytes", "file_bytes"),
)
LIMITS = tuple(limit for _, limit in _LIMIT_MARKS)


def error_type(error: str | None) -> str | None:
    """The exception class named on the error's last line ("ZeroDivisionError")."""
    if not error:
        return None
    last = error.strip().splitlines()[-1]
    name, sep, _ = last.partition(":")
    name = name.strip()
    return name if sep and name.isidentifier() else "Error"


def limit_hit(error: str | None) -> str | None:
    """The sandbox limit (a `Limits` field name) that stopped the execution, if any."""
    if not error:
        return None
    last = error.strip().splitlines()[-1]
    return next((limit for mark, limit in _LIMIT_MARKS if mark in last), None)
