"""The commands users, service accounts and agents share: list, show, update, disable, enable,
delete — added to each group's typer app by `add_principal_commands`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.core.model import Principal, PrincipalKind

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines.")]


def when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"  # type: ignore[attr-defined]


def principal_json(principal: Principal, groups: list[str] | None = None) -> str:
    document: dict[str, object] = {
        "id": principal.id,
        "name": principal.name,
        "kind": principal.kind.value,
        "displayName": principal.display_name,
        "disabled": principal.disabled,
        "created": principal.created_at.isoformat(),
    }
    if groups is not None:
        document["groups"] = groups
    return json.dumps(document)


def tenant_of(ctx: typer.Context, tenant: str | None) -> str:
    return tenant or state(ctx).services().config.security.default_tenant


def add_principal_commands(app: typer.Typer, kind: PrincipalKind, noun: str) -> None:
    """Add list/show/update/disable/enable/delete for ``kind`` to ``app``."""

    @app.command("list")
    def list_principals(
        ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
    ) -> None:
        """List them, by name."""
        services = state(ctx).services()
        found = services.identity.directory.list(
            tenant_name=tenant or services.config.security.default_tenant, kind=kind
        )
        if as_json:
            for principal in found:
                typer.echo(principal_json(principal))
            return
        table = Table("ID", "Name", "Display name", "State", "Created")
        for p in found:
            table.add_row(
                p.id,
                p.name,
                p.display_name,
                "disabled" if p.disabled else "active",
                when(p.created_at),
            )
        Console(width=200).print(table)

    @app.command("show")
    def show(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
        """Show one as JSON, with its groups."""
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
        """Delete, with every credential and group membership."""
        services = state(ctx).services()
        deleted = services.identity.directory.delete(
            tenant_name=tenant or services.config.security.default_tenant,
            kind=kind,
            name=name,
            actor=operator_actor(),
        )
        typer.echo(f"deleted {noun} {deleted.name}")


def _update(
    ctx: typer.Context,
    kind: PrincipalKind,
    name: str,
    tenant: str | None,
    *,
    display_name: str | None = None,
    disabled: bool | None = None,
) -> None:
    services = state(ctx).services()
    changed = services.identity.directory.update(
        tenant_name=tenant or services.config.security.default_tenant,
        kind=kind,
        name=name,
        display_name=display_name,
        disabled=disabled,
        actor=operator_actor(),
    )
    typer.echo(principal_json(changed))
