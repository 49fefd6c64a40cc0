"""``bastion auth``: create, list and revoke API keys."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.config.units import parse_duration

app = typer.Typer(help="API keys.", no_args_is_help=True)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


@app.command("create-key")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name to tell the key apart.")],
    scopes: Annotated[
        str,
        typer.Option(
            "--scopes",
            help="Comma-separated, e.g. patterns:read,executions:create; `admin` for everything.",
        ),
    ],
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 30d.")] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner", help="Principal that owns the key (default: the tenant's first admin)."
        ),
    ] = None,
    tenant: TenantOption = None,
) -> None:
    """Create an API key and print it once. Only a keyed hash of it is stored."""
    try:
        lifetime = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    services = state(ctx).services()
    now = services.clock.now()
    issued = services.api_keys.create(
        tenant_name=tenant or services.config.security.default_tenant,
        owner_name=owner,
        name=name,
        scopes=scopes.split(","),
        expires_at=now + lifetime if lifetime is not None else None,
        actor=operator_actor(),
    )
    typer.echo(issued.secret)
    typer.echo(
        f"created key {issued.key.id} ({issued.key.prefix}…) scopes={','.join(issued.key.scopes)}"
        " — store it now: it cannot be shown again",
        err=True,
    )


@app.command("list-keys")
def list_keys(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Show every key's prefix, name, owner, scopes, created, last used and state."""
    services = state(ctx).services()
    now = services.clock.now()
    listings = services.api_keys.list(tenant_name=tenant or services.config.security.default_tenant)
    if as_json:
        for item in listings:
            key = item.key
            typer.echo(
                json.dumps(
                    {
                        "id": key.id,
                        "prefix": key.prefix,
                        "name": key.name,
                        "owner": item.owner,
                        "scopes": list(key.scopes),
                        "created": key.created_at.isoformat(),
                        "lastUsed": key.last_used_at.isoformat() if key.last_used_at else None,
                        "expires": key.expires_at.isoformat() if key.expires_at else None,
                        "revoked": key.revoked_at.isoformat() if key.revoked_at else None,
                        "active": key.is_active(now),
                    }
                )
            )
        return
    table = Table("ID", "Prefix", "Name", "Owner", "Scopes", "Created", "Last used", "State")
    for item in listings:
        key = item.key
        status = "revoked" if key.revoked_at else ("active" if key.is_active(now) else "expired")
        table.add_row(
            key.id,
            key.prefix + "…",
            key.name,
            item.owner,
            ",".join(key.scopes),
            _when(key.created_at),
            _when(key.last_used_at),
            status,
        )
    Console(width=200).print(table)


@app.command("revoke-key")
def revoke_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key id, prefix or name.")],
    tenant: TenantOption = None,
) -> None:
    """Revoke a key; it stops working on the next request."""
    services = state(ctx).services()
    revoked = services.api_keys.revoke(
        tenant_name=tenant or services.config.security.default_tenant,
        reference=key,
        actor=operator_actor(),
    )
    typer.echo(f"revoked {revoked.id} ({revoked.name})")


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key id, prefix or name.")],
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working, e.g. 24h.")
    ] = "24h",
    tenant: TenantOption = None,
) -> None:
    """Replace a key: print the new one once; the old one works for --grace more, then expires."""
    try:
        period = parse_duration(grace)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--grace") from None
    services = state(ctx).services()
    issued = services.api_keys.rotate(
        tenant_name=tenant or services.config.security.default_tenant,
        reference=key,
        grace=period,
        actor=operator_actor(),
    )
    typer.echo(issued.secret)
    typer.echo(
        f"rotated: new key {issued.key.id} ({issued.key.prefix}…); the old key works for {grace}",
        err=True,
    )
