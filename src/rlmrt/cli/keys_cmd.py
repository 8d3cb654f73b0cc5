"""`rlm tenants` and `rlm keys`: who may call `rlm serve`, in the server's database
(`[server] database_url`). A key is printed once, when it is made; only its hash and
its visible prefix are stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError, ErrorHandlingGroup

if TYPE_CHECKING:
    from rlmrt.server.storage import Store

T = TypeVar("T")

tenants_app = typer.Typer(
    name="tenants",
    help="Tenants of `rlm serve`: each owns its API keys and runs.",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(
    name="keys",
    help="API keys of `rlm serve` (shown once, stored hashed).",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)
JsonOpt = opt.JsonOpt


def with_store(config_file: Path | None, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured server database (migrated), do `action`, close it."""
    from rlmrt.errors import MissingDependencyError

    config = opt.load_settings(config_file, {})
    try:
        from rlmrt.server.storage import Store
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "sqlalchemy", "server") from exc

    async def run() -> T:
        store = await Store.open(config.server.database_url)
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    """Aligned columns, never cut (ids and prefixes are copied from here)."""
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    for row in [columns, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


RpmOpt = Annotated[
    int | None,
    typer.Option(
        "--rpm",
        min=0,
        help="Requests per minute of all the tenant's keys together (0: no limit;"
        " default: [server] tenant_requests_per_minute).",
        show_default=False,
    ),
]
TpmOpt = Annotated[
    int | None,
    typer.Option(
        "--tpm",
        min=0,
        help="Model tokens per minute of all the tenant's keys together (0: no limit;"
        " default: [server] tenant_tokens_per_minute).",
        show_default=False,
    ),
]
ConcurrentOpt = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent",
        min=0,
        help="Runs of all the tenant's keys at the same time (0: no limit;"
        " default: [server] tenant_max_concurrent).",
        show_default=False,
    ),
]


TenantUsdOpt = Annotated[
    float | None,
    typer.Option(
        "--daily-usd",
        min=0,
        help="USD all the tenant's keys together may spend per UTC day (0: no budget;"
        " default: [server] tenant_daily_usd).",
        show_default=False,
    ),
]


def _limits(
    rpm: int | None, tpm: int | None, concurrent: int | None, daily_usd: float | None = None
) -> dict[str, float]:
    given = {
        "requests_per_minute": rpm,
        "tokens_per_minute": tpm,
        "max_concurrent": concurrent,
        "daily_usd": daily_usd,
    }
    return {name: value for name, value in given.items() if value is not None}


def _shown_limit(value: float | None) -> str:
    return "default" if value is None else "none" if value == 0 else f"{value:g}"


@tenants_app.command("create")
def create_tenant(
    name: Annotated[str, typer.Argument(help="The tenant's name.", show_default=False)],
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    daily_usd: TenantUsdOpt = None,
    config_file: opt.ConfigFile = None,
) -> None:
    """Add tenant NAME (with its own rate limits and budget, if given)."""
    limits = _limits(rpm, tpm, max_concurrent, daily_usd)
    tenant = with_store(config_file, lambda store: store.create_tenant(name, **limits))
    print(f"created tenant {tenant.name} ({tenant.id})")


@tenants_app.command("set")
def set_tenant(
    name: Annotated[str, typer.Argument(help="The tenant's name.", show_default=False)],
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    daily_usd: TenantUsdOpt = None,
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Back to the [server] defaults (before the ones given)."),
    ] = False,
    config_file: opt.ConfigFile = None,
) -> None:
    """Set tenant NAME's own rate limits and budget (a running server reads them at
    each request)."""
    from rlmrt.server.storage import TENANT_LIMITS

    limits: dict[str, float | None] = dict.fromkeys(TENANT_LIMITS) if reset else {}
    limits.update(_limits(rpm, tpm, max_concurrent, daily_usd))
    if not limits:
        raise CLIUsageError(
            "give a limit to set: --rpm, --tpm, --max-concurrent, --daily-usd or --reset"
        )
    tenant = with_store(config_file, lambda store: store.set_tenant_limits(name, **limits))
    print(
        f"tenant {tenant.name}: requests/min {_shown_limit(tenant.requests_per_minute)},"
        f" tokens/min {_shown_limit(tenant.tokens_per_minute)},"
        f" concurrent runs {_shown_limit(tenant.max_concurrent)},"
        f" USD/day {_shown_limit(tenant.daily_usd)}"
    )


@tenants_app.command("list")
def list_tenants(config_file: opt.ConfigFile = None, as_json: JsonOpt = False) -> None:
    """List the tenants."""
    tenants = with_store(config_file, lambda store: store.tenants())
    columns = ["name", "id", "created", "rpm", "tpm", "concurrent", "usd_per_day"]
    rows = [
        [
            t.name,
            t.id,
            _when(t.created_at),
            _shown_limit(t.requests_per_minute),
            _shown_limit(t.tokens_per_minute),
            _shown_limit(t.max_concurrent),
            _shown_limit(t.daily_usd),
        ]
        for t in tenants
    ]
    if as_json:
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows]))
    elif not rows:
        print("no tenants yet; add one with `rlm tenants create NAME`")
    else:
        print_table(columns, rows)


@keys_app.command("create")
def create_key(
    tenant: Annotated[
        str, typer.Option("--tenant", help="The tenant the key belongs to.", show_default=False)
    ],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="Expire after this long, e.g. 30d, 12h, 2w (default: never).",
            show_default=False,
        ),
    ] = None,
    daily_usd: Annotated[
        float | None,
        typer.Option(
            "--daily-usd",
            min=0,
            help="USD the key may spend per UTC day (0: no budget; default: [server]"
            " key_daily_usd).",
            show_default=False,
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
) -> None:
    """Make an API key of TENANT and print it (once: only its hash is kept)."""
    from rlmrt.server.keys import parse_duration

    try:
        expires_in = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise CLIUsageError(f"--expires: {exc}") from None
    raw, key = with_store(
        config_file,
        lambda store: store.create_key(tenant, expires_in=expires_in, daily_usd=daily_usd),
    )
    print(raw)
    expiry = f", expires {_when(key.expires_at)}" if key.expires_at else ""
    typer.echo(
        f"key {key.id} of tenant {tenant} (prefix {key.prefix}{expiry}): it is shown only"
        " now, store it safely",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only this tenant's keys.", show_default=False),
    ] = None,
    config_file: opt.ConfigFile = None,
    as_json: JsonOpt = False,
) -> None:
    """List the keys (their prefixes, never the keys)."""
    found = with_store(config_file, lambda store: store.keys(tenant))
    columns = ["id", "prefix", "tenant", "status", "created", "expires", "usd_per_day"]
    rows = [
        [
            key.id,
            key.prefix,
            name,
            key.state(),
            _when(key.created_at),
            _when(key.expires_at),
            _shown_limit(key.daily_usd),
        ]
        for key, name in found
    ]
    if as_json:
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows]))
    elif not rows:
        print("no keys yet; make one with `rlm keys create --tenant NAME`")
    else:
        print_table(columns, rows)


@keys_app.command("revoke")
def revoke_key(
    ref: Annotated[
        str,
        typer.Argument(help="The key's id or prefix (from `rlm keys list`).", show_default=False),
    ],
    config_file: opt.ConfigFile = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    key = with_store(config_file, lambda store: store.revoke_key(ref))
    print(f"revoked key {key.id} ({key.prefix})")
