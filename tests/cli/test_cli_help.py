"""`rlm ... --help` reads well: every paragraph of a command's description is one line
that the terminal wraps, never a docstring's hard line breaks (which cut sentences)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from rlmrt.cli._help import one_line_per_paragraph, reflow_help
from rlmrt.cli.main import app


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and group under `group` (the root included); typer's
    click is its own (vendored), so its classes are typer's."""
    yield path
    if isinstance(group, TyperGroup):
        for name, command in group.commands.items():
            yield from commands(command, (*path, name))


def find(root: Any, path: tuple[str, ...]) -> Any:
    command = root
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


def test_one_line_per_paragraph() -> None:
    text = """First line
        goes on here.

        Second paragraph
        also goes on.
    """
    assert one_line_per_paragraph(text) == (
        "First line goes on here.\n\nSecond paragraph also goes on."
    )


def test_every_help_paragraph_renders_on_one_line() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    paths = list(commands(root))
    assert ("setup", "docker") in paths and ("replay",) in paths
    for path in paths:
        help_text = find(root, path).help
        assert help_text, f"rlm {' '.join(path)} has no help"
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "2000"}).output
        lines = [line.strip(" │") for line in out.splitlines()]
        for paragraph in help_text.split("\n\n"):
            assert "\n" not in paragraph, f"rlm {' '.join(path)}: {paragraph!r}"
            assert paragraph in lines, f"rlm {' '.join(path)} --help cut {paragraph!r}:\n{out}"


def test_reflow_reaches_callbacks_sub_apps_and_given_help() -> None:
    def top() -> None:
        """Top help
        on two lines."""

    def leaf() -> None:
        """Leaf help
        on two lines."""

    sub = typer.Typer(help="Sub help\non two lines.")
    sub.command("leaf")(leaf)
    app = typer.Typer()
    app.callback()(top)
    app.add_typer(sub, name="sub", help="Given help\non two lines.")
    reflow_help(app)
    assert app.registered_callback is not None
    assert app.registered_callback.help == "Top help on two lines."
    assert app.registered_groups[0].help == "Given help on two lines."
    assert sub.info.help == "Sub help on two lines."
    assert sub.registered_commands[0].help == "Leaf help on two lines."
