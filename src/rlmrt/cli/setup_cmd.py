"""`rlm setup [STEP]`: the parts of rlmrt that pip does not install (`rlmrt.setup`).

Each step says what it did (or that all was there), shows its long parts while they
run, and ends with its `rlm doctor` row. Exit 1 when a step could not finish (it needs
root: the command to run is printed) or its row fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rlmrt.cli._errors import EXIT_RUN_ERROR

if TYPE_CHECKING:
    from rlmrt.cli.doctor_cmd import Check
    from rlmrt.setup import Host, Outcome, Reporter

setup_app = typer.Typer(
    help="Set up what pip does not install: the sandboxes' runtimes, the local model,"
    " the test backends. Without a step: all of them.",
)

AsUser = Annotated[
    bool,
    typer.Option(
        "--no-root",
        help="Act as a user without root even as root: print the commands that need root"
        " (apt-get, dockerd) instead of running them.",
    ),
]


class _RichReporter:
    """`Reporter` on the terminal: lines prefixed with the step, a spinner for long parts."""

    def __init__(self, console: Console, step: str) -> None:
        self.console = console
        self.step = step

    def note(self, line: str) -> None:
        self.console.print(f"{self.step}: {line}", markup=False, highlight=False)

    @contextmanager
    def working(self, what: str) -> Iterator[None]:
        if not self.console.is_terminal:
            self.note(f"{what}...")
            yield
            return
        with self.console.status(f"{self.step}: {what}..."):
            yield


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    run: Callable[[Host, Reporter], Outcome]
    row: Callable[[], Check] | None  # its `rlm doctor` row


def _sandbox_row(kind: str) -> Callable[[], Check]:
    def row() -> Check:
        from rlmrt.cli.doctor_cmd import sandbox_check

        return sandbox_check(kind)

    return row


def _model_row() -> Check:
    from rlmrt.cli.doctor_cmd import config_check, local_model_check

    config, _ = config_check()
    return local_model_check(config)


def _process(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.process import setup_process

    return setup_process(host, report)


def _wasm(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.wasm import setup_wasm

    return setup_wasm(host, report)


def _docker(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.docker import setup_docker

    return setup_docker(host, report)


def _browser(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.browser import setup_browser

    return setup_browser(host, report)


def _observe(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.observe import setup_observe

    return setup_observe(host, report)


def _server(host: Host, report: Reporter) -> Outcome:
    from rlmrt.setup.server import setup_server

    return setup_server(host, report)


def _model(host: Host, report: Reporter) -> Outcome:
    """The default local model, pulled as `rlm model pull` does (a progress bar)."""
    from rlmrt.cli.model_cmd import pull_with_progress
    from rlmrt.local.catalog import get_model
    from rlmrt.local.pull import SOURCES
    from rlmrt.setup import Outcome

    model = get_model(None)
    result = pull_with_progress(model, SOURCES)
    for reason in result.skipped:
        report.note(f"skipped {reason}")
    cached = result.source == "cache"
    where = "already in the cache" if cached else f"from {result.source}"
    detail = f"{model.name}: {result.path} ({model.size_gb:.2f} GB, sha256 checked) {where}"
    return Outcome("model", "ready" if cached else "done", detail)


STEPS = {
    step.name: step
    for step in (
        _Step("process", _process, _sandbox_row("process")),
        _Step("wasm", _wasm, _sandbox_row("wasm")),
        _Step("docker", _docker, _sandbox_row("docker")),
        _Step("browser", _browser, None),
        _Step("observe", _observe, None),
        _Step("server", _server, None),
        _Step("model", _model, _model_row),
    )
}


def _run(names: list[str], as_user: bool) -> None:
    """Run the steps `names` in order, print each outcome and its doctor row, and exit 1
    when one could not finish."""
    from rlmrt.cli.doctor_cmd import doctor_table
    from rlmrt.setup import Host

    host = Host.detect(as_user=as_user)
    console = Console(highlight=False)
    unfinished: list[str] = []
    rows: list[Check] = []
    for name in names:
        step = STEPS[name]
        outcome = step.run(host, _RichReporter(console, name))
        shown = {"ready": "ready, nothing to do", "done": "done", "needs": "not finished"}
        console.print(f"{name}: {shown[outcome.state]}: {outcome.detail}", markup=False)
        for command in outcome.commands:
            console.print(f"{name}: run: {command}", markup=False)
        row = step.row() if step.row is not None else None
        if row is not None:
            rows.append(row)
        if outcome.state == "needs" or (row is not None and row.level == "fail"):
            unfinished.append(name)
    if rows:
        console.print(doctor_table(rows))
    if unfinished:
        console.print(f"not finished: {', '.join(unfinished)} (see above)", markup=False)
        raise typer.Exit(EXIT_RUN_ERROR)


@setup_app.callback(invoke_without_command=True)
def setup_all(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Set up every part, in this order: process (bubblewrap), wasm (Deno and Pyodide),
    docker (engine and image), browser (Chromium), observe (Phoenix, Prometheus), server
    (PostgreSQL, Redis), model (the local model, 1.1 GB). Each step does only what is missing."""
    ctx.obj = as_user  # `rlm setup --no-root STEP` holds for the step too
    if ctx.invoked_subcommand is None:
        _run(list(STEPS), as_user)


@setup_app.command("process")
def process(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install bubblewrap (Debian; needs root), which isolates the process sandbox."""
    _run(["process"], as_user or ctx.obj is True)


@setup_app.command("wasm")
def wasm(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install the wasm sandbox's Deno and Pyodide (npm, pinned versions) into its runtime
    folder and make its memory snapshot."""
    _run(["wasm"], as_user or ctx.obj is True)


@setup_app.command("docker")
def docker(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install Docker and debootstrap (Debian), start dockerd, build the docker sandbox's
    image offline from Debian packages. Needs root."""
    _run(["docker"], as_user or ctx.obj is True)


@setup_app.command("browser")
def browser(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install headless Chromium (Debian; needs root) for the visualizer's browser test."""
    _run(["browser"], as_user or ctx.obj is True)


@setup_app.command("observe")
def observe(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install the telemetry backends the observe tests use: Arize Phoenix in its own
    virtual environment, Prometheus and Alertmanager (Debian; needs root)."""
    _run(["observe"], as_user or ctx.obj is True)


@setup_app.command("server")
def server(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Install PostgreSQL and Redis (Debian; needs root), which `rlm serve` replicas
    share: the database (server.database_url) and the rate-limit counters
    (server.rate_limit_storage)."""
    _run(["server"], as_user or ctx.obj is True)


@setup_app.command("model")
def model(ctx: typer.Context, as_user: AsUser = False) -> None:
    """Download the default local model (as `rlm model pull`)."""
    _run(["model"], as_user or ctx.obj is True)
