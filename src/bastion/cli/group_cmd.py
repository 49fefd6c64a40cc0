"""``bastion group``: groups of principals and their members."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import JsonOption, TenantOption, remote_of
from bastion.cli.remote import segment
from bastion.services.groups import GroupView

group_app = typer.Typer(help="Groups of principals.", no_args_is_help=True)


def _default(ctx: typer.Context, tenant: str | None) -> str:
    return tenant or state(ctx).services().config.security.default_tenant


def _doc(view: GroupView) -> dict[str, Any]:
    """A group in the admin API's shape, which the local commands print too."""
    return {
        "id": view.group.id,
        "name": view.group.name,
        "displayName": view.group.display_name,
        "members": [{"name": m.name, "kind": m.kind.value} for m in view.members],
    }


@group_app.command("create")
def group_create(
    ctx: typer.Context,
    name: str,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    tenant: TenantOption = None,
) -> None:
    """Create a group."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        created = remote.post("/groups", {"name": name, "displayName": display_name})
    else:
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
        created = {"name": group.name, "id": group.id}
    typer.echo(f"created group {created['name']} ({created['id']})")


@group_app.command("list")
def group_list(
    ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
) -> None:
    """List groups with their members."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        views = remote.get_all("/groups")
    else:
        groups = state(ctx).services().identity.groups
        views = [_doc(v) for v in groups.list(tenant_name=_default(ctx, tenant))]
    if as_json:
        for v in views:  # each line as `group show` prints it and the admin API answers
            typer.echo(json.dumps(v))
        return
    table = Table("ID", "Name", "Display name", "Members")
    for v in views:
        members_text = ", ".join(m["name"] for m in v["members"])
        table.add_row(v["id"], v["name"], v["displayName"], members_text)
    Console(width=200).print(table)


@group_app.command("show")
def group_show(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """Show one group as JSON."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        shown = remote.get(f"/groups/{segment(name)}")
        shown.pop("created", None)
    else:
        groups = state(ctx).services().identity.groups
        shown = _doc(groups.show(tenant_name=_default(ctx, tenant), name=name))
    typer.echo(json.dumps(shown))


@group_app.command("update")
def group_update(
    ctx: typer.Context,
    name: str,
    display_name: Annotated[str, typer.Option("--display-name")],
    tenant: TenantOption = None,
) -> None:
    """Change a group's display name."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        remote.patch(f"/groups/{segment(name)}", {"displayName": display_name})
    else:
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
    remote = remote_of(ctx, tenant)
    if remote is not None:
        remote.delete(f"/groups/{segment(name)}")
        deleted = name
    else:
        groups = state(ctx).services().identity.groups
        deleted = groups.delete(
            tenant_name=_default(ctx, tenant), name=name, actor=operator_actor()
        ).name
    typer.echo(f"deleted group {deleted}")


def _change_membership(
    ctx: typer.Context, name: str, member: str, tenant: str | None, *, add: bool
) -> bool:
    """Add or remove ``member``; True when that changed the group."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        path = f"/groups/{segment(name)}"
        before = {m["name"] for m in remote.get(path)["members"]}
        after = remote.call("PUT" if add else "DELETE", f"{path}/members/{segment(member)}")
        return {m["name"] for m in after["members"]} != before
    groups = state(ctx).services().identity.groups
    change = groups.add_member if add else groups.remove_member
    return change(
        tenant_name=_default(ctx, tenant), name=name, member=member, actor=operator_actor()
    )


@group_app.command("add-member")
def group_add_member(
    ctx: typer.Context, name: str, member: str, tenant: TenantOption = None
) -> None:
    """Add a user, service account or agent (by name) to a group."""
    added = _change_membership(ctx, name, member, tenant, add=True)
    typer.echo(f"{'added' if added else 'already a member:'} {member} → {name}")


@group_app.command("remove-member")
def group_remove_member(
    ctx: typer.Context, name: str, member: str, tenant: TenantOption = None
) -> None:
    """Remove a member from a group."""
    removed = _change_membership(ctx, name, member, tenant, add=False)
    typer.echo(f"{'removed' if removed else 'not a member:'} {member} from {name}")
