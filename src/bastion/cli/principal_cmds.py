"""The commands users, service accounts and agents share: list, show, update, disable, enable,
delete — added to each group's typer app by `add_principal_commands`, local or remote."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.remote import RemoteClient, segment
from bastion.core.model import Principal, PrincipalKind

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines.")]

# Where each kind lives in the admin API (``/v1/<path>``).
API_PATHS = {
    PrincipalKind.USER: "users",
    PrincipalKind.SERVICE_ACCOUNT: "serviceaccounts",
    PrincipalKind.AGENT: "agents",
}


def when(moment: object) -> str:
    if isinstance(moment, str):  # an admin API answer's RFC 3339 time
        moment = datetime.fromisoformat(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"  # type: ignore[attr-defined]


def principal_doc(principal: Principal, groups: list[str]) -> dict[str, Any]:
    """A principal in the admin API's shape, which the local commands print too."""
    return {
        "id": principal.id,
        "name": principal.name,
        "kind": principal.kind.value,
        "displayName": principal.display_name,
        "disabled": principal.disabled,
        "created": principal.created_at.isoformat(),
        "groups": groups,
    }


def principal_json(principal: Principal, groups: list[str]) -> str:
    return json.dumps(principal_doc(principal, groups))


def remote_json(document: dict[str, Any]) -> str:
    """An admin API principal printed as the local commands print one."""
    return json.dumps({k: v for k, v in document.items() if v is not None})


def tenant_of(ctx: typer.Context, tenant: str | None) -> str:
    return tenant or state(ctx).services().config.security.default_tenant


def remote_of(ctx: typer.Context, tenant: str | None) -> RemoteClient | None:
    """The admin API client in remote mode (checking ``tenant`` is the login's), else None."""
    remote = state(ctx).remote()
    if remote is not None:
        remote.in_tenant(tenant)
    return remote


def add_principal_commands(app: typer.Typer, kind: PrincipalKind, noun: str) -> None:
    """Add list/show/update/disable/enable/delete for ``kind`` to ``app``."""
    path = "/" + API_PATHS[kind]

    @app.command("list")
    def list_principals(
        ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
    ) -> None:
        """List them, by name."""
        remote = remote_of(ctx, tenant)
        if remote is not None:
            found = remote.get_all(path)
        else:
            services = state(ctx).services()
            listed = services.identity.directory.list(
                tenant_name=tenant or services.config.security.default_tenant, kind=kind
            )
            found = [principal_doc(p, groups) for p, groups in listed]
        if as_json:
            for document in found:
                typer.echo(remote_json(document))
            return
        table = Table("ID", "Name", "Display name", "State", "Groups", "Created")
        for p in found:
            state_text = "disabled" if p["disabled"] else "active"
            groups = ", ".join(p.get("groups") or [])
            table.add_row(
                p["id"], p["name"], p["displayName"], state_text, groups, when(p["created"])
            )
        Console(width=200).print(table)

    @app.command("show")
    def show(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
        """Show one as JSON, with its groups."""
        remote = remote_of(ctx, tenant)
        if remote is not None:
            typer.echo(remote_json(remote.get(f"{path}/{segment(name)}")))
            return
        services = state(ctx).services()
        principal, groups = services.identity.directory.show(
            tenant_name=tenant or services.config.security.default_tenant, kind=kind, name=name
        )
        typer.echo(principal_json(principal, groups))

    @app.command("update")
    def update(
        ctx: typer.Context,
        name: str,
        display_name: Annotated[str, typer.Option("--display-name", help="New display name.")],
        tenant: TenantOption = None,
    ) -> None:
        """Change the display name."""
        _update(ctx, kind, name, tenant, display_name=display_name)

    @app.command("disable")
    def disable(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
        """Disable: every credential stops working on the next request."""
        _update(ctx, kind, name, tenant, disabled=True)

    @app.command("enable")
    def enable(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
        """Enable again."""
        _update(ctx, kind, name, tenant, disabled=False)

    @app.command("delete")
    def delete(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
        """Delete, with every credential, group membership and stored role binding."""
        remote = remote_of(ctx, tenant)
        if remote is not None:
            deleted_name = remote.delete(f"{path}/{segment(name)}")["name"]
        else:
            services = state(ctx).services()
            deleted_name = services.identity.directory.delete(
                tenant_name=tenant or services.config.security.default_tenant,
                kind=kind,
                name=name,
                actor=operator_actor(),
            ).name
        typer.echo(f"deleted {noun} {deleted_name}")


def _update(
    ctx: typer.Context,
    kind: PrincipalKind,
    name: str,
    tenant: str | None,
    *,
    display_name: str | None = None,
    disabled: bool | None = None,
) -> None:
    remote = remote_of(ctx, tenant)
    if remote is not None:
        change = {"displayName": display_name, "disabled": disabled}
        body = {k: v for k, v in change.items() if v is not None}
        typer.echo(remote_json(remote.patch(f"/{API_PATHS[kind]}/{segment(name)}", body)))
        return
    services = state(ctx).services()
    changed, groups = services.identity.directory.update(
        tenant_name=tenant or services.config.security.default_tenant,
        kind=kind,
        name=name,
        display_name=display_name,
        disabled=disabled,
        actor=operator_actor(),
    )
    typer.echo(principal_json(changed, groups))
