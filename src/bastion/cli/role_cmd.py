"""``bastion role``: list, define and delete roles; bind them to subjects and unbind them —
locally, or remotely through ``/v1/roles`` and ``/v1/bindings``."""

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
from bastion.core.model import RoleBinding, SubjectType
from bastion.services.authz_roles import RoleView
from bastion.wiring import Services

app = typer.Typer(help="Roles and role bindings.", no_args_is_help=True)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]
Permissions = Annotated[
    list[str] | None,
    typer.Option("--permission", help="resource:action, repeatable (e.g. patterns:read)."),
]
Inherits = Annotated[list[str] | None, typer.Option("--inherits", help="Role to inherit.")]


def _local(ctx: typer.Context, tenant: str | None) -> tuple[Services, str]:
    """The local services and the tenant a command acts in (default: security.defaultTenant)."""
    services = state(ctx).services()
    return services, tenant or services.config.security.default_tenant


def _role_doc(view: RoleView) -> dict[str, Any]:
    """A role in the admin API's shape, which the local commands print too."""
    return {
        "name": view.name,
        "source": view.source,
        "permissions": list(view.permissions),
        "inherits": list(view.inherits),
        "effective": list(view.effective),
    }


def _binding_doc(binding: RoleBinding) -> dict[str, Any]:
    """A binding in the admin API's shape, which the local commands print too."""
    return {
        "id": binding.id,
        "subject": {"type": str(binding.subject_type), "name": binding.subject_name},
        "role": binding.role,
        "created": binding.created_at.isoformat(),
        "expires": binding.expires_at.isoformat() if binding.expires_at else None,
    }


@app.command("list")
def list_roles(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Built-in, configured and custom roles with their effective permissions."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        roles = remote.get("/roles")
    else:
        services, name = _local(ctx, tenant)
        roles = [_role_doc(view) for view in services.authz.admin.list_roles(name)]
    if as_json:
        for role in roles:
            typer.echo(json.dumps(role))
        return
    table = Table("Role", "Source", "Inherits", "Effective permissions")
    for role in roles:
        inherited, effective = ", ".join(role["inherits"]), ", ".join(role["effective"])
        table.add_row(role["name"], role["source"], inherited, effective)
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
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body = {"permissions": permissions or [], "inherits": inherits or []}
        if create:
            saved = remote.post("/roles", {"name": name, **body})["name"]
        else:
            saved = remote.put(f"/roles/{segment(name)}", body)["name"]
    else:
        services, tenant_name = _local(ctx, tenant)
        saved = services.authz.admin.save_role(
            tenant_name=tenant_name,
            name=name,
            permissions=permissions or [],
            inherits=inherits or [],
            actor=operator_actor(),
            create=create,
        ).name
    typer.echo(f"{'created' if create else 'updated'} role {saved}")


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
    remote = remote_of(ctx, tenant)
    if remote is not None:
        remote.delete(f"/roles/{segment(name)}")
    else:
        services, tenant_name = _local(ctx, tenant)
        services.authz.admin.delete_role(tenant_name=tenant_name, name=name, actor=operator_actor())
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
    check_lifetime(lifetime, "--expires")
    [(kind, name)] = subjects
    remote = remote_of(ctx, tenant)
    if remote is not None:
        until = datetime.now(UTC) + lifetime if lifetime is not None else None
        body = {
            "subject": {"type": str(kind), "name": name},
            "role": role,
            "expires": until.isoformat() if until is not None else None,
        }
        binding = remote.post("/bindings", body)
    else:
        services, tenant_name = _local(ctx, tenant)
        now = services.clock.now()
        stored = services.authz.admin.bind(
            tenant_name=tenant_name,
            subject_type=kind,
            subject_name=name,
            role=role,
            expires_at=now + lifetime if lifetime is not None else None,
            actor=operator_actor(),
        )
        binding = _binding_doc(stored)
    subject = binding["subject"]
    typer.echo(
        f"created binding {binding['id']}: {subject['type']} {subject['name']} → {binding['role']}"
    )


@app.command("unbind")
def unbind(
    ctx: typer.Context,
    binding_id: Annotated[str, typer.Argument(help="Binding id (see `bastion role bindings`).")],
    tenant: TenantOption = None,
) -> None:
    """Remove a stored binding; it stops granting on the next request."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        remote.delete(f"/bindings/{segment(binding_id)}")
        removed = binding_id
    else:
        services, tenant_name = _local(ctx, tenant)
        removed = services.authz.admin.unbind(
            tenant_name=tenant_name, binding_id=binding_id, actor=operator_actor()
        ).id
    typer.echo(f"removed binding {removed}")


def binding_cursor(document: dict[str, Any]) -> str:
    """A binding's place in the admin API's list (`bastion.gateway.api.bindings`)."""
    return f"{document['subject']['type']}/{document['subject']['name']}/{document['role']}"


@app.command("bindings")
def bindings(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """Stored bindings of a tenant (configured ones are in bastion.yaml)."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        now = datetime.now(UTC)
        found = remote.get_all("/bindings", cursor=binding_cursor)
    else:
        services, tenant_name = _local(ctx, tenant)
        now = services.clock.now()
        found = [_binding_doc(b) for b in services.authz.admin.list_bindings(tenant_name)]
    table = Table("ID", "Subject", "Role", "Expires", "State")
    for b in found:
        expires = b["expires"]
        active = expires is None or now < datetime.fromisoformat(expires)
        subject = f"{b['subject']['type']} {b['subject']['name']}"
        table.add_row(b["id"], subject, b["role"], when(expires), "active" if active else "expired")
    Console(width=200).print(table)
