"""``bastion tenant``: create, list, show, update, disable, enable and delete tenants."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import JsonOption, when
from bastion.cli.remote import segment
from bastion.services.directory import TenantView

tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)


def _doc(view: TenantView) -> dict[str, Any]:
    """A tenant in the admin API's shape, which the local commands print too."""
    return {
        "id": view.tenant.id,
        "name": view.tenant.name,
        "displayName": view.state.display_name,
        "disabled": view.state.disabled,
        "principals": view.principals,
        "created": view.tenant.created_at.isoformat(),
    }


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context, name: str, display_name: Annotated[str, typer.Option("--display-name")] = ""
) -> None:
    """Create a tenant."""
    remote = state(ctx).remote()
    if remote is not None:
        created = remote.post("/tenants", {"name": name, "displayName": display_name})
    else:
        directory = state(ctx).services().identity.directory
        tenant = directory.create_tenant(
            name=name, display_name=display_name, actor=operator_actor()
        )
        created = {"name": tenant.name, "id": tenant.id}
    typer.echo(f"created tenant {created['name']} ({created['id']})")


@tenant_app.command("list")
def tenant_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List tenants, oldest first."""
    remote = state(ctx).remote()
    if remote is not None:
        views = remote.get("/tenants")
    else:
        views = [_doc(v) for v in state(ctx).services().identity.directory.list_tenants()]
    if as_json:
        for v in views:
            typer.echo(json.dumps(v))
        return
    table = Table("ID", "Name", "Display name", "State", "Principals", "Created")
    for v in views:
        table.add_row(
            v["id"],
            v["name"],
            v["displayName"],
            "disabled" if v["disabled"] else "active",
            str(v["principals"]),
            when(v["created"]),
        )
    Console(width=200).print(table)


@tenant_app.command("show")
def tenant_show(ctx: typer.Context, name: str) -> None:
    """Show one tenant as JSON."""
    remote = state(ctx).remote()
    if remote is not None:
        typer.echo(json.dumps(remote.get(f"/tenants/{segment(name)}")))
        return
    typer.echo(json.dumps(_doc(state(ctx).services().identity.directory.show_tenant(name))))


def _tenant_update(
    ctx: typer.Context, name: str, *, display_name: str | None = None, disabled: bool | None = None
) -> None:
    remote = state(ctx).remote()
    if remote is not None:
        change = {"displayName": display_name, "disabled": disabled}
        body = {k: v for k, v in change.items() if v is not None}
        changed = remote.patch(f"/tenants/{segment(name)}", body)
    else:
        directory = state(ctx).services().identity.directory
        changed = _doc(
            directory.update_tenant(
                name, display_name=display_name, disabled=disabled, actor=operator_actor()
            )
        )
    typer.echo(f"tenant {changed['name']}: {'disabled' if changed['disabled'] else 'active'}")


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
    remote = state(ctx).remote()
    if remote is not None:
        remote.delete(f"/tenants/{segment(name)}")
        deleted = name
    else:
        directory = state(ctx).services().identity.directory
        deleted = directory.delete_tenant(name, actor=operator_actor()).name
    typer.echo(f"deleted tenant {deleted}")
