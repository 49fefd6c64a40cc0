"""``bastion authz rule``: list, show, create and delete a tenant's resource rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.core.names import canonical_name
from bastion.core.resource_rules import parse_resource
from bastion.errors import NotFoundError, RequestRejectedError
from bastion.wiring import Services

app = typer.Typer(
    help="Resource rules: who may act on one resource instance.", no_args_is_help=True
)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant (default: security.defaultTenant).")
]
RuleRef = Annotated[str, typer.Argument(help="A rule id (rul_…) or a resource type/id.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON lines.")]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule as the CLI shows it, stored (``source`` = its id) or from bastion.yaml."""

    id: str
    source: str  # stored | config
    resource: str
    allowed_users: tuple[str, ...]
    allowed_roles: tuple[str, ...]
    actions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "resource": self.resource,
            "allowedUsers": list(self.allowed_users),
            "allowedRoles": list(self.allowed_roles),
            "actions": list(self.actions),
        }


def _tenant(services: Services, tenant: str | None) -> str:
    return canonical_name(tenant or services.config.security.default_tenant)


def _rows(services: Services, tenant: str) -> list[RuleRow]:
    """The tenant's stored rules, then those ``security.rbac.resourceRules`` gives it."""
    rows = [
        RuleRow(
            id=r.id,
            source="stored",
            resource=f"{r.resource_type}/{r.resource_id}",
            allowed_users=r.allowed_users,
            allowed_roles=r.allowed_roles,
            actions=r.actions,
        )
        for r in services.authz.admin.list_rules(tenant)
    ]
    for configured in services.authz.authorizer.settings.rules:
        if configured.tenant != tenant:
            continue
        rule = configured.rule
        rows.append(
            RuleRow(
                id=rule.via,
                source="config",
                resource=rule.resource,
                allowed_users=tuple(sorted(rule.allowed_users)),
                allowed_roles=tuple(sorted(rule.allowed_roles)),
                actions=tuple(sorted(rule.actions or ())),
            )
        )
    return rows


def _matching(rows: list[RuleRow], ref: str, tenant: str) -> list[RuleRow]:
    """Rows named by ``ref``: its id, or every rule of the resource instance ``type/id``."""
    if "/" not in ref:
        found = [row for row in rows if row.id == ref]
        if not found:
            raise NotFoundError(f"no rule '{ref}' in tenant '{tenant}'")
        return found
    try:
        resource = "/".join(parse_resource(ref))
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    found = [row for row in rows if row.resource == resource]
    if not found:
        raise NotFoundError(f"no rule for {resource} in tenant '{tenant}'")
    return found


def _print(rows: list[RuleRow], *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.as_dict()))
        return
    table = Table("ID", "Resource", "Allowed users", "Allowed roles", "Actions")
    for row in rows:
        table.add_row(
            row.id,
            row.resource,
            ", ".join(row.allowed_users) or "-",
            ", ".join(row.allowed_roles) or "-",
            ", ".join(row.actions) or "every action",
        )
    Console(width=200).print(table)


@app.command("list")
def list_rules(ctx: typer.Context, tenant: TenantOption = None, as_json: AsJson = False) -> None:
    """Every resource rule of a tenant: stored ones and those from bastion.yaml."""
    services = state(ctx).services()
    _print(_rows(services, _tenant(services, tenant)), as_json=as_json)


@app.command("show")
def show(
    ctx: typer.Context, rule: RuleRef, tenant: TenantOption = None, as_json: AsJson = False
) -> None:
    """One rule by id, or every rule on one resource instance."""
    services = state(ctx).services()
    name = _tenant(services, tenant)
    _print(_matching(_rows(services, name), rule, name), as_json=as_json)


@app.command("create")
def create(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="The resource instance, type/id.")],
    user: Annotated[
        list[str] | None, typer.Option("--user", help="Allowed user's login, repeatable.")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Allowed role, repeatable.")
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option("--action", help="Action the rule covers, repeatable (default: every)."),
    ] = None,
    tenant: TenantOption = None,
) -> None:
    """Store the rule of one resource instance (one per instance and tenant)."""
    if not user and not role:
        raise typer.BadParameter("name at least one --user or --role")
    services = state(ctx).services()
    stored = services.authz.admin.add_rule(
        tenant_name=_tenant(services, tenant),
        resource=resource,
        allowed_users=user or [],
        allowed_roles=role or [],
        actions=action or [],
        actor=operator_actor(),
    )
    typer.echo(f"created rule {stored.id} on {stored.resource_type}/{stored.resource_id}")


@app.command("delete")
def delete(ctx: typer.Context, rule: RuleRef, tenant: TenantOption = None) -> None:
    """Delete a stored rule, by id or by its resource (rules from bastion.yaml change there)."""
    services = state(ctx).services()
    name = _tenant(services, tenant)
    [row] = _matching(_rows(services, name), rule, name)[:1]
    if row.source == "config":
        raise RequestRejectedError(f"rule {row.id} is in bastion.yaml; change it there")
    services.authz.admin.delete_rule(tenant_name=name, rule_id=row.id, actor=operator_actor())
    typer.echo(f"deleted rule {row.id} on {row.resource}")
