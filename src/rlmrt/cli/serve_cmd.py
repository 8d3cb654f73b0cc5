"""`rlm serve`: the OpenAI-compatible API server (the `server` extra), run by uvicorn.

It listens on 127.0.0.1 unless told otherwise and answers /v1 only to a tenant's key
(`rlm keys create`). SIGTERM or Ctrl-C stop it gracefully: it stops accepting, lets
the requests under way finish (up to `GRACE_S`), closes its sandboxes and exits 0.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from typing import Annotated, Any

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError
from rlmrt.config import DEFAULT_PROFILE, setting_field

GRACE_S = 30


def _help(name: str) -> str:
    return setting_field("server", name).description or ""


@opt.setting_flags
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help=_help("host"), show_default=False)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help=_help("port") + " 0: any free port."),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            help="Serve only this profile (repeat for several; default: every profile).",
            show_default=False,
        ),
    ] = None,
    project: opt.ProjectName = None,
    config_file: opt.ConfigFile = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Serve the OpenAI API (POST /v1/chat/completions, GET /v1/models) on HOST:PORT;
    each request is an RLM run of the profile it names as `model`."""
    from rlmrt.errors import MissingDependencyError, RunError

    given = dict(settings or {})
    # port 0 (any free port) is no setting's value: it is used for this start only
    given.update({k: v for k, v in {"server_host": host, "server_port": port}.items() if v})
    config = opt.load_settings(config_file, given, project)
    try:
        import uvicorn

        from rlmrt.server.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "server") from exc

    app = create_app(config, profiles=profile or ())
    usable = asyncio.run(_usable_keys(config.server.database_url))
    listen_port = 0 if port == 0 else config.server.port
    sock = _bind(config.server.host, listen_port)
    bound_port = sock.getsockname()[1]
    url_host = f"[{config.server.host}]" if ":" in config.server.host else config.server.host
    names = ", ".join(dict.fromkeys(profile or [DEFAULT_PROFILE, *config.server.profiles]))
    typer.echo(f"serving the OpenAI API on http://{url_host}:{bound_port}/v1", err=True)
    typer.echo(f"models (profiles): {names}", err=True)
    if usable == 0 and not config.server.jwt_jwks_url:
        typer.echo(
            "warning: no usable API key yet, every /v1 request gets 401; make one with"
            " `rlm tenants create NAME` and `rlm keys create --tenant NAME`",
            err=True,
        )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=_log_config(uvicorn),
            timeout_graceful_shutdown=GRACE_S,
            lifespan="on",
            ws="none",  # no WebSocket routes
        )
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # SIGTERM or Ctrl-C after the graceful shutdown: how a server ends
    finally:
        sock.close()
    if not server.started:
        raise RunError("the server did not start (its log above says why)")
    typer.echo("server stopped", err=True)


async def _usable_keys(url: str) -> int:
    """Open the database now (migrating it), so a bad URL fails before the server starts."""
    from rlmrt.server.storage import Store

    store = await Store.open(url)
    try:
        return await store.usable_keys()
    finally:
        await store.aclose()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # the protocol named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto is
    # IPPROTO_TCP, and without it an answer's body waits for the client's delayed ACK
    # of its headers (Nagle): ~40 ms added to every request
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CLIUsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port, or stop what listens there",
        ) from None
    sock.listen(2048)
    return sock


def _log_config(uvicorn: Any) -> dict[str, Any]:
    """uvicorn's logging, with rlmrt's server log (run failures) on the same handler."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["rlmrt"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return dict(config)
