"""`rlm sandbox serve` (a sandbox host for `Sandbox("remote", ...)`) and `rlm sandbox
token FILE` (a new token for it, stored hashed). SIGTERM or Ctrl-C stop the host: it
closes its sandboxes and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
from pathlib import Path
from typing import Annotated, Any

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError, ErrorHandlingGroup

sandbox_app = typer.Typer(
    name="sandbox",
    help='Sandbox hosts: kernels for remote clients (Sandbox("remote", ...)).',
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)

TOKEN_ENV = "RLM_SANDBOX_HOST_TOKEN"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@sandbox_app.command("token")
def token(
    file: Annotated[Path, typer.Argument(help="Where the token's hash is written (0600).")],
) -> None:
    """Make a new token: its hash goes to FILE (for `rlm sandbox serve --token-file`),
    the token itself is printed once, for the clients."""
    from rlmrt.sandbox._remote_wire import hash_token, new_token

    secret = new_token()
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise CLIUsageError(f"cannot write {file}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(hash_token(secret) + "\n")
    typer.echo(secret)


@sandbox_app.command("serve")
@opt.setting_flags
def serve(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on (port 0: any free port).")
    ] = "127.0.0.1:8765",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help=f"The token's hash (`rlm sandbox token FILE`); default: ${TOKEN_ENV}.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve wss:// with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="The sandboxes served: process, docker or wasm.")
    ] = "process",
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0, help="Seconds a disconnected client's sandbox waits for it."
        ),
    ] = 60.0,
    max_sandboxes: Annotated[
        int,
        typer.Option(
            "--max-sandboxes",
            min=1,
            help="Sandboxes served at a time (with those waiting for their client).",
        ),
    ] = 16,
    config_file: opt.ConfigFile = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Serve sandboxes over a WebSocket to clients with the token. The limits settings
    (--memory-mb, --exec-timeout, --cpu-s, --processes, ...) are the host's maxima: a
    client's sandbox never gets more, whatever it asks."""
    from rlmrt.sandbox._remote_wire import hash_token, read_token_hash
    from rlmrt.sandbox.remote_host import SandboxHost

    config = opt.load_settings(config_file, dict(settings or {}))
    address, _, port_text = listen.rpartition(":")
    if not address or not port_text.isdigit() or int(port_text) > 65535:
        raise CLIUsageError(f"--listen takes HOST:PORT, got {listen!r}")
    if token_file is not None:
        token_hash = read_token_hash(token_file)
    elif os.environ.get(TOKEN_ENV):
        token_hash = hash_token(os.environ.pop(TOKEN_ENV))  # not inherited by kernels
    else:
        raise CLIUsageError(f"no token: give --token-file FILE or set ${TOKEN_ENV}")
    host = SandboxHost(
        kind=kind,
        token_hash=token_hash,
        max_limits=config.limits,
        grace_s=grace,
        max_sandboxes=max_sandboxes,
        pool=config.sandbox.pool,
        tls=_tls(tls_cert, tls_key),
    )
    # SIGTERM or Ctrl-C, its sandboxes closed on the way out: how a host ends
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, address.strip("[]"), int(port_text), tls_cert is not None))


async def _serve(host: Any, address: str, port: int, tls: bool) -> None:
    bound, bound_port = await host.start(address, port)
    url_host = f"[{bound}]" if ":" in bound else bound
    # the first line of stdout is the address: scripts starting port 0 read it
    typer.echo(f"{'wss' if tls else 'ws'}://{url_host}:{bound_port}")
    typer.echo(f"serving {host.kind} sandboxes; limits at most {host.max_limits!r}", err=True)
    # SIGTERM and Ctrl-C end the wait, not whichever task runs when they come
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await host.aclose()


def _tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None:
        raise CLIUsageError("--tls-key needs --tls-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CLIUsageError(f"cannot use the TLS certificate {cert}: {exc}") from None
    return context
