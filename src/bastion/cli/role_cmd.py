"""``bastion role``: list, define and delete roles; bind them to subjects and unbind them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.config.units import parse_duration
from bastion.core.model import SubjectType

app = typer.Typer(help="Roles and role bindings.", no_args_is_help=True)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]
Permissions = Annotated[
    list[str] | None,
    typer.Option("--permission", help="resource:action, repeatable (e.g. patterns:read)."),
]
Inherits = Annotated[list[str] | None, typer.Option("--inherits", help="Role to inherit.")]


@app.command("list")
def list_roles(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Built-in, configured and custom roles with their effective permissions."""
    services = state(ctx).services()
    views = services.authz.admin.list_roles(tenant or services.config.security.default_tenant)
    if as_json:
        for view in views:
            typer.echo(
                json.dumps(
                    {
                        "name": view.name,
                        "source": view.source,
                        "permissions": list(view.permissions),
                        "inherits": list(view.inherits),
                        "effective": list(view.effective),
                    }
                )
            )
        return
    table = Table("Role", "Source", "Inherits", "Effective permissions")
    for view in views:
        table.add_row(view.name, view.source, ", ".join(view.inherits), ", ".join(view.effective))
    Console(width=200).print(table)


def _save(
    ctx: typer.Context,
    name: str,
    permissions: list[str] | None,
    inherits: list[str] | None,
    tenant: str | None,
    *,
    create: bool,
) -> None:
    services = state(ctx).services()
    role = services.authz.admin.save_role(
        tenant_name=tenant or services.config.security.default_tenant,
        name=name,
        permissions=permissions or [],
        inherits=inherits or [],
        actor=operator_actor(),
        create=create,
    )
    typer.echo(f"{'created' if create else 'updated'} role {role.name}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Role name.")],
    permission: Permissions = None,
    inherits: Inherits = None,
    tenant: TenantOption = None,
) -> None:
    """Define a custom role in a tenant; an inheritance cycle is refused."""
    _save(ctx, name, permission, inherits, tenant, create=True)


@app.command("update")
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Role name.")],
    permission: Permissions = None,
    inherits: Inherits = None,
    tenant: TenantOption = None,
) -> None:
    """Replace a custom role's permissions and inherited roles."""
    _save(ctx, name, permission, inherits, tenant, create=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Role name.")],
    tenant: TenantOption = None,
) -> None:
    """Delete a custom role (refused while another role inherits it)."""
    services = state(ctx).services()
    services.authz.admin.delete_role(
        tenant_name=tenant or services.config.security.default_tenant,
        name=name,
        actor=operator_actor(),
    )
    typer.echo(f"deleted role {name}")


@app.command("bind")
def bind(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help="Role to give.")],
    user: Annotated[str | None, typer.Option("--user", help="A user's login.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="A group's name.")] = None,
    service_account: Annotated[
        str | None, typer.Option("--service-account", help="A service account's name.")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="An agent's name.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 8h.")] = None,
    tenant: TenantOption = None,
) -> None:
    """Bind a role to exactly one subject, optionally for a limited time."""
    subjects = [
        (kind, name)
        for kind, name in (
            (SubjectType.USER, user),
            (SubjectType.GROUP, group),
            (SubjectType.SERVICE_ACCOUNT, service_account),
            (SubjectType.AGENT, agent),
        )
        if name
    ]
    if len(subjects) != 1:
        raise typer.BadParameter("name exactly one of --user, --group, --service-account, --agent")
    try:
        lifetime = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    services = state(ctx).services()
    now = services.clock.now()
    [(kind, name)] = subjects
    binding = services.authz.admin.bind(
        tenant_name=tenant or services.config.security.default_tenant,
        subject_type=kind,
        subject_name=name,
        role=role,
        expires_at=now + lifetime if lifetime is not None else None,
        actor=operator_actor(),
    )
    typer.echo(f"created binding {binding.id}: {kind} {binding.subject_name} → {role}")


@app.command("unbind")
def unbind(
    ctx: typer.Context,
    binding_id: Annotated[str, typer.Argument(help="Binding id (see `bastion role bindings`).")],
    tenant: TenantOption = None,
) -> None:
    """Remove a stored binding; it stops granting on the next request."""
    services = state(ctx).services()
    binding = services.authz.admin.unbind(
        tenant_name=tenant or services.config.security.default_tenant,
        binding_id=binding_id,
        actor=operator_actor(),
    )
    typer.echo(f"removed binding {binding.id}")


@app.command("bindings")
def bindings(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """Stored bindings of a tenant (configured ones are in bastion.yaml)."""
    services = state(ctx).services()
    now = services.clock.now()
    table = Table("ID", "Subject", "Role", "Expires", "State")
    found = services.authz.admin.list_bindings(tenant or services.config.security.default_tenant)
    for b in found:
        expires = b.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC") if b.expires_at else "-"
        status = "active" if b.is_active(now) else "expired"
        table.add_row(b.id, f"{b.subject_type} {b.subject_name}", b.role, expires, status)
    Console(width=200).print(table)
