"""Turning errors into one line on stderr and an exit code, never a traceback.

Exit codes: 0 success, 1 run error (model, sandbox, budget, file system), 2 misuse
(bad setting, bad context, unknown run; also typer's own usage errors), 3 a partial
answer (`rlm run`: a limit stopped the run and the answer printed is its best effort),
130 Ctrl-C, 143 SIGTERM. SIGTERM is handled like Ctrl-C: the command unwinds and its sandboxes,
containers and temporary folders are cleaned up before it exits.
"""

from __future__ import annotations

import io
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_RUN_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so every cleanup runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the body runs (in the main thread), SIGTERM raises `Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CLIUsageError(Exception):
    """Misuse found by the CLI itself, with an optional hint line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


def fail(message: str, *, hint: str | None = None, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` (and the hint) on stderr; return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return typer.Exit(code)


def _hint(exc: BaseException) -> str | None:
    from rlmrt.errors import ConfigError

    text = str(exc)
    if isinstance(exc, ConfigError):
        if "no model configured" in text:
            return "or pass --model provider/name on the command line"
        if "rlm.toml" in text or ".toml" in text:
            return "`rlm config show` shows the effective settings; `rlm doctor` checks the setup"
    return None


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Map rlmrt errors, OSError and Ctrl-C to a message and an exit code."""
    from rlmrt.errors import RLMError, UsageError

    try:
        yield
    except CLIUsageError as exc:
        raise fail(str(exc), hint=exc.hint) from None
    except UsageError as exc:
        raise fail(str(exc), hint=_hint(exc)) from None
    except RLMError as exc:
        raise fail(str(exc), code=EXIT_RUN_ERROR) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise fail(f"{exc.strerror or exc}{where}", code=EXIT_RUN_ERROR) from None
    except Terminated:
        raise fail("terminated (SIGTERM)", code=EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=EXIT_INTERRUPTED) from None


def lossless_output() -> None:
    """Text that is not valid Unicode (a lone surrogate from a file name or the shell)
    is printed escaped (`\\udcff`), not a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


class ErrorHandlingGroup(TyperGroup):
    """Every sub-command runs inside `errors_to_exit`, in the console script and in
    typer's CliRunner alike (both go through `invoke`)."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context is private
        lossless_output()
        with errors_to_exit(), sigterm_unwinds():
            return super().invoke(ctx)
