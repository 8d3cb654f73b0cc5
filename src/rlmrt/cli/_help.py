"""Help texts as the terminal should wrap them: one line per paragraph.

Docstrings are wrapped at the source's line length; typer keeps those line breaks in
every paragraph but the first, so `rlm X --help` showed lines cut mid-sentence.
`reflow_help` rewrites the help of every command and group of an app, once, when the
app is assembled (`rlmrt.cli.main`).
"""

from __future__ import annotations

import inspect

import typer


def one_line_per_paragraph(text: str) -> str:
    """`text` dedented, each paragraph (blank-line separated) joined into one line."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def reflow_help(app: typer.Typer) -> None:
    """Reflow the help of `app`, its commands and its sub-apps (recursively): given help
    texts and docstrings alike (a docstring becomes the given help)."""
    if isinstance(app.info.help, str):
        app.info.help = one_line_per_paragraph(app.info.help)
    callback = app.registered_callback
    if callback is not None:
        if isinstance(callback.help, str):
            callback.help = one_line_per_paragraph(callback.help)
        elif not isinstance(app.info.help, str) and inspect.getdoc(callback.callback):
            callback.help = one_line_per_paragraph(inspect.getdoc(callback.callback) or "")
    for command in app.registered_commands:
        text = command.help if isinstance(command.help, str) else inspect.getdoc(command.callback)
        if text:
            command.help = one_line_per_paragraph(text)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = one_line_per_paragraph(group.help)
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)
