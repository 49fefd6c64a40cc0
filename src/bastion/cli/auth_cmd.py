"""``bastion auth``: create, list and revoke API keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import check_lifetime, operator_actor, state
from bastion.cli.principal_cmds import remote_of, when
from bastion.cli.remote import segment
from bastion.config.units import parse_duration
from bastion.core.apikeys import (
    API_KEY_PREFIX,
    DISPLAY_PREFIX_LENGTH,
    display_prefix,
    is_well_formed_api_key,
)
from bastion.services.apikeys import KeyListing

app = typer.Typer(help="API keys.", no_args_is_help=True)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]


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
    check_lifetime(lifetime, "--expires")
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body: dict[str, Any] = {"name": name, "scopes": scopes.split(",")}
        if lifetime is not None:
            body["expires"] = (datetime.now(UTC) + lifetime).isoformat()
        path = f"/serviceaccounts/{segment(owner)}/credentials" if owner else "/apikeys"
        created = remote.post(path, body)
        _print_issued(created["secret"], created["id"], created["prefix"], created["scopes"])
        return
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
    _print_issued(issued.secret, issued.key.id, issued.key.prefix, list(issued.key.scopes))


def _print_issued(secret: str, key_id: str, prefix: str, scopes: list[str]) -> None:
    typer.echo(secret)
    typer.echo(
        f"created key {key_id} ({prefix}…) scopes={','.join(scopes)}"
        " — store it now: it cannot be shown again",
        err=True,
    )


def _doc(item: KeyListing) -> dict[str, Any]:
    """A key in the admin API's shape, which the local commands print too."""
    key = item.key

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "owner": item.owner,
        "scopes": list(key.scopes),
        "created": key.created_at.isoformat(),
        "lastUsed": moment(key.last_used_at),
        "expires": moment(key.expires_at),
        "revoked": moment(key.revoked_at),
    }


def _state(document: dict[str, Any], now: datetime) -> str:
    if document["revoked"]:
        return "revoked"
    expires = document["expires"]
    return "expired" if expires and datetime.fromisoformat(expires) <= now else "active"


@app.command("list-keys")
def list_keys(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Show every key's prefix, name, owner, scopes, created, last used and state."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        now = datetime.now(UTC)
        listings = remote.get_all("/apikeys")
    else:
        services = state(ctx).services()
        now = services.clock.now()
        tenant_name = tenant or services.config.security.default_tenant
        listings = [_doc(item) for item in services.api_keys.list(tenant_name=tenant_name)]
    if as_json:
        for document in listings:
            key_state = _state(document, now)
            typer.echo(
                json.dumps({**document, "state": key_state, "active": key_state == "active"})
            )
        return
    table = Table("ID", "Prefix", "Name", "Owner", "Scopes", "Created", "Last used", "State")
    for d in listings:
        table.add_row(
            d["id"],
            d["prefix"] + "…",
            d["name"],
            d["owner"],
            ",".join(d["scopes"]),
            when(d["created"]),
            when(d["lastUsed"]),
            _state(d, now),
        )
    Console(width=200).print(table)


def _remote_reference(key: str) -> str:
    """What names ``key`` in a URL: a whole key goes as its display prefix, never in full
    (URLs end up in proxies' logs)."""
    if not key.startswith(API_KEY_PREFIX) or len(key) <= DISPLAY_PREFIX_LENGTH:
        return key
    if not is_well_formed_api_key(key):
        raise typer.BadParameter(
            "not a whole bastion API key (its checksum does not match); give its id, prefix"
            " or name",
            param_hint="KEY",
        )
    return display_prefix(key)


@app.command("revoke-key")
def revoke_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key id, prefix, name, or the whole key.")],
    tenant: TenantOption = None,
) -> None:
    """Revoke a key; it stops working on the next request."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        answer = remote.delete(f"/apikeys/{segment(_remote_reference(key))}")
        typer.echo(f"revoked {answer['id']} ({answer['name']}) at {when(answer['revoked'])}")
        return
    services = state(ctx).services()
    revoked = services.api_keys.revoke(
        tenant_name=tenant or services.config.security.default_tenant,
        reference=key,
        actor=operator_actor(),
    )
    # A key revoked before keeps its first revocation time, which this line shows.
    typer.echo(f"revoked {revoked.id} ({revoked.name}) at {when(revoked.revoked_at)}")


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key id, prefix, name, or the whole key.")],
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
    remote = remote_of(ctx, tenant)
    if remote is not None:
        rotated = remote.post(
            f"/apikeys/{segment(_remote_reference(key))}/rotate", {"grace": grace}
        )
        _print_rotated(rotated["secret"], rotated["id"], rotated["prefix"], grace)
        return
    services = state(ctx).services()
    issued = services.api_keys.rotate(
        tenant_name=tenant or services.config.security.default_tenant,
        reference=key,
        grace=period,
        actor=operator_actor(),
    )
    _print_rotated(issued.secret, issued.key.id, issued.key.prefix, grace)


def _print_rotated(secret: str, key_id: str, prefix: str, grace: str) -> None:
    typer.echo(secret)
    typer.echo(f"rotated: new key {key_id} ({prefix}…); the old key works for {grace}", err=True)
