"""The `rlm` command: wiring of the sub-commands (each in its own module).

Engine modules are imported inside the commands, so `rlm --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rlmrt.cli._errors import ErrorHandlingGroup
from rlmrt.cli._help import reflow_help
from rlmrt.cli.audit_cmd import audit_app
from rlmrt.cli.batch_cmd import batch
from rlmrt.cli.chat_cmd import chat
from rlmrt.cli.config_cmd import config_app
from rlmrt.cli.costs_cmd import costs
from rlmrt.cli.doctor_cmd import doctor
from rlmrt.cli.index_cmd import index, search
from rlmrt.cli.init_cmd import init
from rlmrt.cli.keys_cmd import keys_app, tenants_app
from rlmrt.cli.logs_cmd import logs
from rlmrt.cli.mcp_cmd import mcp_app
from rlmrt.cli.memory_cmd import feedback, memory_app
from rlmrt.cli.metrics_cmd import metrics_app
from rlmrt.cli.model_cmd import model_app
from rlmrt.cli.project_cmd import project_app
from rlmrt.cli.replay_cmd import replay
from rlmrt.cli.run_cmd import run
from rlmrt.cli.sandbox_cmd import sandbox_app
from rlmrt.cli.serve_cmd import serve
from rlmrt.cli.setup_cmd import setup_app
from rlmrt.cli.tools_cmd import tools_app
from rlmrt.cli.tools_market_cmd import register as register_market
from rlmrt.cli.visualize_cmd import visualize

app = typer.Typer(
    name="rlm",
    help="rlmrt: run Recursive Language Models over large inputs.",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        import rlmrt

        print(f"rlm (rlmrt) {rlmrt.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """rlmrt: run Recursive Language Models over large inputs."""


app.command("run")(run)
app.command("logs")(logs)
app.command("costs")(costs)
app.command("replay")(replay)
app.command("chat")(chat)
app.command("init")(init)
app.command("doctor")(doctor)
app.command("index")(index)
app.command("search")(search)
app.command("visualize")(visualize)
app.command("serve")(serve)
app.command("batch")(batch)
app.command("feedback")(feedback)
app.add_typer(config_app, name="config")
app.add_typer(model_app, name="model")
app.add_typer(mcp_app, name="mcp")
app.add_typer(project_app, name="project")
app.add_typer(metrics_app, name="metrics")
app.add_typer(setup_app, name="setup")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(memory_app, name="memory")
app.add_typer(sandbox_app, name="sandbox")
register_market(tools_app)  # `rlm tools search` and `rlm tools install`
app.add_typer(tools_app, name="tools")
reflow_help(app)

if __name__ == "__main__":  # pragma: no cover - `python -m rlmrt.cli.main`
    app()
