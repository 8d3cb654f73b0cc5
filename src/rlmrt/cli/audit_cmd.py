"""`rlm audit`: the server's hash-chained audit log (`[server] database_url`): list its
records, verify its chain."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError, ErrorHandlingGroup
from rlmrt.cli.keys_cmd import JsonOpt, print_table, with_store

audit_app = typer.Typer(
    name="audit",
    help="The audit log of `rlm serve` (append-only, hash-chained).",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)


@audit_app.command("list")
def list_records(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only this tenant's records.", show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only the records of this last while, e.g. 1d, 12h.", show_default=False
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
    as_json: JsonOpt = False,
) -> None:
    """List the audit records, oldest first."""
    from rlmrt.server.audit import record_fields
    from rlmrt.server.keys import parse_duration
    from rlmrt.server.models import utc_now

    try:
        start = utc_now() - parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise CLIUsageError(f"--since: {exc}") from None
    records = with_store(
        config_file, lambda store: store.audit_records(tenant_name=tenant, since=start)
    )
    if as_json:
        print(json.dumps([record_fields(r) | {"hash": r.hash} for r in records]))
        return
    if not records:
        print("no audit records" + (" match" if tenant or since else " yet"))
        return
    columns = ["seq", "at", "action", "actor", "tenant", "target", "client", "detail"]
    rows = [
        [
            str(r.seq),
            r.at[:19].replace("T", " "),
            r.action,
            r.actor,
            r.tenant_id or "-",
            r.target or "-",
            r.client or "-",
            r.detail if r.detail != "{}" else "-",
        ]
        for r in records
    ]
    print_table(columns, rows)


@audit_app.command("verify")
def verify(config_file: opt.ConfigFile = None) -> None:
    """Check the chain: exit 0 when intact, 1 naming the first record that breaks it."""
    count, broken = with_store(config_file, lambda store: store.verify_audit())
    if broken is not None:
        typer.echo(f"audit log broken at {broken} ({count - 1} records before it intact)")
        raise typer.Exit(1)
    print(f"{count} records, chain intact")
