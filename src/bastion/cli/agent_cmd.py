"""``bastion agent``: registration tokens (``create-token``, ``list-tokens``, ``revoke-token``)
and the agents that registered (list, show, update, disable, enable, delete)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import (
    JsonOption,
    TenantOption,
    add_principal_commands,
    remote_of,
    when,
)
from bastion.cli.remote import segment
from bastion.config.units import parse_duration
from bastion.core.credentials import RegistrationToken
from bastion.core.model import PrincipalKind

app = typer.Typer(help="Agents and their registration tokens.", no_args_is_help=True)


@app.command("create-token")
def create_token(
    ctx: typer.Context,
    capabilities: Annotated[
        str,
        typer.Option(
            "--capabilities",
            help="Comma-separated, e.g. classification,analysis; they become the agent's scopes.",
        ),
    ],
    ttl: Annotated[str | None, typer.Option("--ttl", help="Lifetime, e.g. 1h (default).")] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role to bind the agent to (repeatable).")
    ] = None,
    tenant: TenantOption = None,
) -> None:
    """Print a single-use registration token (bat_…) once; only its keyed hash is stored."""
    try:
        lifetime = parse_duration(ttl) if ttl is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ttl") from None
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body = {"capabilities": capabilities.split(","), "roles": role or [], "ttl": ttl}
        created = remote.post("/agents/tokens", body)
        secret, document = created.pop("token"), created
    else:
        services = state(ctx).services()
        token, secret = services.identity.agents.create_token(
            tenant_name=tenant or services.config.security.default_tenant,
            capabilities=capabilities.split(","),
            roles=role or [],
            ttl=lifetime,
            actor=operator_actor(),
        )
        document = _doc(token)
    typer.echo(secret)
    typer.echo(
        f"created registration token {document['id']} scopes={','.join(document['capabilities'])}"
        f" expires {when(document['expires'])} — single use; store it now",
        err=True,
    )


def _doc(token: RegistrationToken) -> dict[str, Any]:
    """A registration token in the admin API's shape, which the local commands print too."""

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": token.id,
        "prefix": token.prefix,
        "capabilities": list(token.capabilities),
        "roles": list(token.roles),
        "created": token.created_at.isoformat(),
        "expires": token.expires_at.isoformat(),
        "used": moment(token.used_at),
        "agentId": token.agent_id,
        "revoked": moment(token.revoked_at),
    }


def _token_state(document: dict[str, Any], now: datetime) -> str:
    if document["revoked"]:
        return "revoked"
    if document["used"]:
        return "used"
    return "expired" if now >= datetime.fromisoformat(document["expires"]) else "unused"


@app.command("list-tokens")
def list_tokens(
    ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
) -> None:
    """Registration tokens: prefix, capabilities, state and the agent that used each."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        now = datetime.now(UTC)
        tokens = remote.get("/agents/tokens")
    else:
        services = state(ctx).services()
        now = services.clock.now()
        tenant_name = tenant or services.config.security.default_tenant
        tokens = [_doc(t) for t in services.identity.agents.list_tokens(tenant_name=tenant_name)]
    if as_json:
        for t in tokens:
            document = {
                "id": t["id"],
                "prefix": t["prefix"],
                "capabilities": t["capabilities"],
                "roles": t["roles"],
                "state": _token_state(t, now),
                "agentId": t["agentId"],
                "expires": t["expires"],
            }
            typer.echo(json.dumps(document))
        return
    table = Table("ID", "Prefix", "Capabilities", "Roles", "State", "Agent", "Expires")
    for t in tokens:
        table.add_row(
            t["id"],
            t["prefix"] + "…",
            ",".join(t["capabilities"]),
            ",".join(t["roles"]),
            _token_state(t, now),
            t["agentId"] or "-",
            when(t["expires"]),
        )
    Console(width=200).print(table)


@app.command("revoke-token")
def revoke_token(ctx: typer.Context, token_id: str, tenant: TenantOption = None) -> None:
    """Revoke an unused registration token."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        revoked_id = remote.delete(f"/agents/tokens/{segment(token_id)}")["id"]
    else:
        services = state(ctx).services()
        revoked_id = services.identity.agents.revoke_token(
            tenant_name=tenant or services.config.security.default_tenant,
            token_id=token_id,
            actor=operator_actor(),
        ).id
    typer.echo(f"revoked registration token {revoked_id}")


add_principal_commands(app, PrincipalKind.AGENT, "agent")
