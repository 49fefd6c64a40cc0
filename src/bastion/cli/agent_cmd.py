"""``bastion agent``: registration tokens (``create-token``, ``list-tokens``, ``revoke-token``)
and the agents that registered (list, show, update, disable, enable, delete)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import JsonOption, TenantOption, add_principal_commands, when
from bastion.config.units import parse_duration
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
    services = state(ctx).services()
    token, secret = services.identity.agents.create_token(
        tenant_name=tenant or services.config.security.default_tenant,
        capabilities=capabilities.split(","),
        roles=role or [],
        ttl=lifetime,
        actor=operator_actor(),
    )
    typer.echo(secret)
    typer.echo(
        f"created registration token {token.id} scopes={','.join(token.capabilities)}"
        f" expires {when(token.expires_at)} — single use; store it now",
        err=True,
    )


@app.command("list-tokens")
def list_tokens(
    ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
) -> None:
    """Registration tokens: prefix, capabilities, state and the agent that used each."""
    services = state(ctx).services()
    now = services.clock.now()
    tokens = services.identity.agents.list_tokens(
        tenant_name=tenant or services.config.security.default_tenant
    )
    rows = []
    for t in tokens:
        status = (
            "revoked"
            if t.revoked_at
            else "used"
            if t.used_at
            else ("expired" if now >= t.expires_at else "unused")
        )
        rows.append((t, status))
    if as_json:
        for t, status in rows:
            document = {
                "id": t.id,
                "prefix": t.prefix,
                "capabilities": list(t.capabilities),
                "roles": list(t.roles),
                "state": status,
                "agentId": t.agent_id,
                "expires": t.expires_at.isoformat(),
            }
            typer.echo(json.dumps(document))
        return
    table = Table("ID", "Prefix", "Capabilities", "Roles", "State", "Agent", "Expires")
    for t, status in rows:
        table.add_row(
            t.id,
            t.prefix + "…",
            ",".join(t.capabilities),
            ",".join(t.roles),
            status,
            t.agent_id or "-",
            when(t.expires_at),
        )
    Console(width=200).print(table)


@app.command("revoke-token")
def revoke_token(ctx: typer.Context, token_id: str, tenant: TenantOption = None) -> None:
    """Revoke an unused registration token."""
    services = state(ctx).services()
    token = services.identity.agents.revoke_token(
        tenant_name=tenant or services.config.security.default_tenant,
        token_id=token_id,
        actor=operator_actor(),
    )
    typer.echo(f"revoked registration token {token.id}")


add_principal_commands(app, PrincipalKind.AGENT, "agent")
