"""``bastion group``: groups of principals and their members."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import (
    JsonOption,
    TenantOption,
)

group_app = typer.Typer(help="Groups of principals.", no_args_is_help=True)


def _default(ctx: typer.Context, tenant: str | None) -> str:
    return tenant or state(ctx).services().config.security.default_tenant


# -- groups ----------------------------------------------------------------------------------


@group_app.command("create")
def group_create(
    ctx: typer.Context,
    name: str,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    tenant: TenantOption = None,
) -> None:
    """Create a group."""
    group = (
        state(ctx)
        .services()
        .identity.groups.create(
            tenant_name=_default(ctx, tenant),
            name=name,
            display_name=display_name,
            actor=operator_actor(),
        )
    )
    typer.echo(f"created group {group.name} ({group.id})")


@group_app.command("list")
def group_list(
    ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
) -> None:
    """List groups with their members."""
    views = state(ctx).services().identity.groups.list(tenant_name=_default(ctx, tenant))
    if as_json:
        for v in views:
            typer.echo(
                json.dumps(
                    {
                        "id": v.group.id,
                        "name": v.group.name,
                        "displayName": v.group.display_name,
                        "members": [m.name for m in v.members],
                    }
                )
            )
        return
    table = Table("ID", "Name", "Display name", "Members")
    for v in views:
        table.add_row(
            v.group.id, v.group.name, v.group.display_name, ", ".join(m.name for m in v.members)
        )
    Console(width=200).print(table)


@group_app.command("show")
def group_show(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """Show one group as JSON."""
    v = state(ctx).services().identity.groups.show(tenant_name=_default(ctx, tenant), name=name)
    typer.echo(
        json.dumps(
            {
                "id": v.group.id,
                "name": v.group.name,
                "displayName": v.group.display_name,
                "members": [{"name": m.name, "kind": m.kind.value} for m in v.members],
            }
        )
    )


@group_app.command("update")
def group_update(
    ctx: typer.Context,
    name: str,
    display_name: Annotated[str, typer.Option("--display-name")],
    tenant: TenantOption = None,
) -> None:
    """Change a group's display name."""
    state(ctx).services().identity.groups.update(
        tenant_name=_default(ctx, tenant),
        name=name,
        display_name=display_name,
        actor=operator_actor(),
    )
    typer.echo(f"updated group {name}")


@group_app.command("delete")
def group_delete(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """Delete a group and its memberships."""
    group = (
        state(ctx)
        .services()
        .identity.groups.delete(
            tenant_name=_default(ctx, tenant), name=name, actor=operator_actor()
        )
    )
    typer.echo(f"deleted group {group.name}")


@group_app.command("add-member")
def group_add_member(
    ctx: typer.Context, name: str, member: str, tenant: TenantOption = None
) -> None:
    """Add a user, service account or agent (by name) to a group."""
    added = (
        state(ctx)
        .services()
        .identity.groups.add_member(
            tenant_name=_default(ctx, tenant), name=name, member=member, actor=operator_actor()
        )
    )
    typer.echo(f"{'added' if added else 'already a member:'} {member} → {name}")


@group_app.command("remove-member")
def group_remove_member(
    ctx: typer.Context, name: str, member: str, tenant: TenantOption = None
) -> None:
    """Remove a member from a group."""
    removed = (
        state(ctx)
        .services()
        .identity.groups.remove_member(
            tenant_name=_default(ctx, tenant), name=name, member=member, actor=operator_actor()
        )
    )
    typer.echo(f"{'removed' if removed else 'not a member:'} {member} from {name}")
