"""``bastion authz rule``: list, show, create and delete a tenant's resource rules — locally, or
remotely through ``/v1/resource-rules`` (which holds the stored rules only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import remote_of
from bastion.cli.remote import RemoteClient, segment
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
# The admin API has no view of security.rbac.resourceRules in the server's bastion.yaml.
NOT_REMOTE = "rules declared in the server's bastion.yaml are not visible remotely"


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


def _remote_rows(remote: RemoteClient) -> list[RuleRow]:
    """The stored rules of the login's tenant, from the admin API."""
    return [
        RuleRow(
            id=r["id"],
            source="stored",
            resource=r["resource"],
            allowed_users=tuple(r["allowedUsers"]),
            allowed_roles=tuple(r["allowedRoles"]),
            actions=tuple(r["actions"]),
        )
        for r in remote.get_all("/resource-rules", cursor=lambda rule: str(rule["resource"]))
    ]


def _rows_of(ctx: typer.Context, tenant: str | None) -> tuple[list[RuleRow], str, bool]:
    """The rules a command sees, the tenant's name and whether they came from the admin API."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        return _remote_rows(remote), remote.tenant, True
    services = state(ctx).services()
    name = _tenant(services, tenant)
    return _rows(services, name), name, False


def _matching(rows: list[RuleRow], ref: str, tenant: str, *, remote: bool) -> list[RuleRow]:
    """Rows named by ``ref``: its id, or every rule of the resource instance ``type/id``."""
    hint = f" ({NOT_REMOTE})" if remote else ""
    if "/" not in ref:
        found = [row for row in rows if row.id == ref]
        if not found:
            raise NotFoundError(f"no rule '{ref}' in tenant '{tenant}'{hint}")
        return found
    try:
        resource = "/".join(parse_resource(ref))
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    found = [row for row in rows if row.resource == resource]
    if not found:
        raise NotFoundError(f"no rule for {resource} in tenant '{tenant}'{hint}")
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
    """Every resource rule of a tenant: stored ones and those from bastion.yaml (remotely: the
    stored ones only, with a note on stderr)."""
    rows, _, remote = _rows_of(ctx, tenant)
    _print(rows, as_json=as_json)
    if remote:
        typer.echo(f"note: {NOT_REMOTE}", err=True)


@app.command("show")
def show(
    ctx: typer.Context, rule: RuleRef, tenant: TenantOption = None, as_json: AsJson = False
) -> None:
    """One rule by id, or every rule on one resource instance."""
    rows, name, remote = _rows_of(ctx, tenant)
    _print(_matching(rows, rule, name, remote=remote), as_json=as_json)


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
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body = {
            "resource": resource,
            "allowedUsers": user or [],
            "allowedRoles": role or [],
            "actions": action or [],
        }
        created = remote.post("/resource-rules", body)
        rule_id, on = created["id"], created["resource"]
    else:
        services = state(ctx).services()
        stored = services.authz.admin.add_rule(
            tenant_name=_tenant(services, tenant),
            resource=resource,
            allowed_users=user or [],
            allowed_roles=role or [],
            actions=action or [],
            actor=operator_actor(),
        )
        rule_id, on = stored.id, f"{stored.resource_type}/{stored.resource_id}"
    typer.echo(f"created rule {rule_id} on {on}")


@app.command("delete")
def delete(ctx: typer.Context, rule: RuleRef, tenant: TenantOption = None) -> None:
    """Delete a stored rule, by id or by its resource (rules from bastion.yaml change there)."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        [row] = _matching(_remote_rows(remote), rule, remote.tenant, remote=True)[:1]
        remote.delete(f"/resource-rules/{segment(row.id)}")
    else:
        services = state(ctx).services()
        name = _tenant(services, tenant)
        [row] = _matching(_rows(services, name), rule, name, remote=False)[:1]
        if row.source == "config":
            raise RequestRejectedError(f"rule {row.id} is in bastion.yaml; change it there")
        services.authz.admin.delete_rule(tenant_name=name, rule_id=row.id, actor=operator_actor())
    typer.echo(f"deleted rule {row.id} on {row.resource}")
