"""``bastion tenant``: create, list, show, update, disable, enable and delete tenants."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import (
    JsonOption,
    when,
)

tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)


# -- tenants ---------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context, name: str, display_name: Annotated[str, typer.Option("--display-name")] = ""
) -> None:
    """Create a tenant."""
    tenant = (
        state(ctx)
        .services()
        .identity.directory.create_tenant(
            name=name, display_name=display_name, actor=operator_actor()
        )
    )
    typer.echo(f"created tenant {tenant.name} ({tenant.id})")


@tenant_app.command("list")
def tenant_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List tenants, oldest first."""
    views = state(ctx).services().identity.directory.list_tenants()
    if as_json:
        for v in views:
            typer.echo(
                json.dumps(
                    {
                        "id": v.tenant.id,
                        "name": v.tenant.name,
                        "displayName": v.state.display_name,
                        "disabled": v.state.disabled,
                        "principals": v.principals,
                    }
                )
            )
        return
    table = Table("ID", "Name", "Display name", "State", "Principals", "Created")
    for v in views:
        table.add_row(
            v.tenant.id,
            v.tenant.name,
            v.state.display_name,
            "disabled" if v.state.disabled else "active",
            str(v.principals),
            when(v.tenant.created_at),
        )
    Console(width=200).print(table)


@tenant_app.command("show")
def tenant_show(ctx: typer.Context, name: str) -> None:
    """Show one tenant as JSON."""
    v = state(ctx).services().identity.directory.show_tenant(name)
    typer.echo(
        json.dumps(
            {
                "id": v.tenant.id,
                "name": v.tenant.name,
                "displayName": v.state.display_name,
                "disabled": v.state.disabled,
                "principals": v.principals,
                "created": v.tenant.created_at.isoformat(),
            }
        )
    )


def _tenant_update(
    ctx: typer.Context, name: str, *, display_name: str | None = None, disabled: bool | None = None
) -> None:
    v = (
        state(ctx)
        .services()
        .identity.directory.update_tenant(
            name, display_name=display_name, disabled=disabled, actor=operator_actor()
        )
    )
    typer.echo(f"tenant {v.tenant.name}: {'disabled' if v.state.disabled else 'active'}")


@tenant_app.command("update")
def tenant_update(
    ctx: typer.Context, name: str, display_name: Annotated[str, typer.Option("--display-name")]
) -> None:
    """Change a tenant's display name."""
    _tenant_update(ctx, name, display_name=display_name)


@tenant_app.command("disable")
def tenant_disable(ctx: typer.Context, name: str) -> None:
    """Disable a tenant: no credential of it works until it is enabled again."""
    _tenant_update(ctx, name, disabled=True)


@tenant_app.command("enable")
def tenant_enable(ctx: typer.Context, name: str) -> None:
    """Enable a tenant again."""
    _tenant_update(ctx, name, disabled=False)


@tenant_app.command("delete")
def tenant_delete(ctx: typer.Context, name: str) -> None:
    """Delete an empty tenant (no principals, groups or registration tokens left)."""
    tenant = state(ctx).services().identity.directory.delete_tenant(name, actor=operator_actor())
    typer.echo(f"deleted tenant {tenant.name}")
