"""``bastion authz``: check and explain one decision, and run policy test files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.tree import Tree

from bastion.cli import authz_remote
from bastion.cli.context import state
from bastion.config.authz_cases import AuthzCase, load_cases
from bastion.core.decision import Decision
from bastion.core.rbac import parse_scopes
from bastion.services.authz_checks import CheckQuery, CheckResult
from bastion.services.authz_model import PlatformBinding

app = typer.Typer(help="Authorization decisions: check, explain, test.", no_args_is_help=True)

Principal = Annotated[
    str, typer.Option("--principal", "-p", help="Login or name of the principal.")
]
Action = Annotated[str, typer.Option("--action", "-a", help="Action, e.g. execute.")]
Resource = Annotated[
    str, typer.Option("--resource", "-r", help="type or type/id, e.g. patterns/classifier.")
]
Tenant = Annotated[str | None, typer.Option("--tenant", help="The principal's tenant.")]
Target = Annotated[
    str | None, typer.Option("--target", help="Tenant to act in (default: the principal's).")
]
Scopes = Annotated[
    str | None, typer.Option("--scopes", help="Comma-separated credential scopes to narrow by.")
]
Ip = Annotated[str | None, typer.Option("--ip", help="Client IP address for Cedar's context.")]
Mfa = Annotated[bool, typer.Option("--mfa", help="Pretend a second factor was used.")]


def _query(
    principal: str,
    action: str,
    resource: str,
    tenant: str | None,
    target: str | None,
    scopes: str | None,
    ip: str | None,
    mfa: bool,
) -> CheckQuery:
    return CheckQuery(
        principal=principal,
        action=action,
        resource=resource,
        tenant=tenant,
        target=target,
        scopes=_scopes(scopes),
        client_ip=ip,
        mfa=mfa,
        auth_method="cli",
    )


def _scopes(scopes: str | None) -> tuple[str, ...] | None:
    """``--scopes`` read as a credential's scopes are (the admin API reads them alike)."""
    if not scopes:
        return None
    try:
        return parse_scopes(scopes.split(","))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from None


def _as_json(result: CheckResult) -> str:
    decision = result.decision
    return json.dumps(
        {
            "effect": decision.effect.value,
            "principal": result.subject.principal.name,
            "tenant": result.tenant,
            "target": result.target,
            "action": result.query.action,
            "resource": result.query.resource,
            "permission": result.permission,
            "reasons": list(decision.reasons),
            "checks": [
                {"stage": c.stage, "passed": c.passed, "reasons": list(c.reasons)}
                for c in decision.checks
            ],
        }
    )


@app.command("check")
def check(
    ctx: typer.Context,
    principal: Principal,
    action: Action,
    resource: Resource,
    tenant: Tenant = None,
    target: Target = None,
    scopes: Scopes = None,
    ip: Ip = None,
    mfa: Mfa = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Print allow or deny (exit status 0 or 1) for one request."""
    asked = (principal, action, resource, tenant, target, scopes, ip, mfa)
    _scopes(scopes)  # a bad --scopes is refused alike locally and remotely
    if (remote := state(ctx).remote()) is not None:
        return authz_remote.check(remote, *asked, as_json=as_json)
    services = state(ctx).services()
    query = _query(principal, action, resource, tenant, target, scopes, ip, mfa)
    result = services.authz.checks.check(query)
    typer.echo(_as_json(result) if as_json else result.decision.effect.value)
    if not result.decision.allowed:
        raise typer.Exit(1)


def explain_tree(result: CheckResult, platform: Sequence[PlatformBinding] = ()) -> Tree:
    """The decision as a tree: effect → stage → reasons. ``platform`` (the configured
    platform bindings) spells out the one that took the principal into another tenant."""
    decision: Decision = result.decision
    query = result.query
    title = (
        f"{decision.effect.value.upper()}  {result.subject.principal.name} → {query.action} "
        f"{query.resource} (tenant {result.target}, permission {result.permission})"
    )
    tree = Tree(title)
    marks = {True: "pass", False: "FAIL", None: "n/a"}
    for check in decision.checks:
        node = tree.add(f"{check.stage}: {marks[check.passed]}")
        for reason in check.reasons:
            leaf = node.add(reason)
            if check.stage == "rbac" and check.passed:
                _origin(result, leaf)
            if check.stage == "tenant" and check.passed and result.tenant != result.target:
                _platform_binding(reason, platform, leaf)
    groups = ", ".join(result.subject.groups) or "none"
    roles = ", ".join(sorted(result.subject.access.roles)) or "none"
    where = "" if result.tenant == result.target else f" in home tenant {result.tenant}"
    tree.add(f"principal: groups {groups}; roles held{where} (with inherited) {roles}")
    return tree


def _platform_binding(reason: str, platform: Sequence[PlatformBinding], leaf: Tree) -> None:
    """What the platform binding named in ``reason`` declares."""
    for binding in platform:
        if reason.endswith(f" through {binding.via}"):
            targets = ", ".join(sorted(binding.targets))
            expires = f", until {binding.expires_at.isoformat()}" if binding.expires_at else ""
            leaf.add(
                f"platform binding: {binding.subject_type} {binding.subject_name} of tenant "
                f"{binding.home} holds role {binding.role} in {targets}{expires}"
            )


def _origin(result: CheckResult, leaf: Tree) -> None:
    """Which role in the inheritance chain brought the permission."""
    resource, _, action = result.permission.partition(":")
    grant = result.subject.access.grant_for(resource, action)
    if grant is None or result.tenant != result.target:
        return
    origin = result.subject.tenant.catalog.origin(grant.role, resource, action)
    if origin is not None and origin[0] != grant.role:
        leaf.add(f"inherited: {grant.role} inherits {origin[1]} from role {origin[0]}")


@app.command("explain")
def explain(
    ctx: typer.Context,
    principal: Principal,
    action: Action,
    resource: Resource,
    tenant: Tenant = None,
    target: Target = None,
    scopes: Scopes = None,
    ip: Ip = None,
    mfa: Mfa = False,
) -> None:
    """Print the decision and its reasons as a tree (exit status 0 allow, 1 deny)."""
    asked = (principal, action, resource, tenant, target, scopes, ip, mfa)
    _scopes(scopes)  # a bad --scopes is refused alike locally and remotely
    if (remote := state(ctx).remote()) is not None:
        return authz_remote.explain(remote, *asked)
    services = state(ctx).services()
    query = _query(principal, action, resource, tenant, target, scopes, ip, mfa)
    result = services.authz.checks.check(query)
    platform = services.authz.authorizer.settings.platform_bindings
    Console(width=200, highlight=False).print(explain_tree(result, platform))
    if not result.decision.allowed:
        raise typer.Exit(1)


def _case_query(case: AuthzCase) -> CheckQuery:
    return CheckQuery(
        principal=case.principal,
        action=case.action,
        resource=case.resource,
        tenant=case.tenant,
        target=case.target,
        scopes=case.scopes,
        client_ip=case.context.client_ip,
        mfa=case.context.mfa,
        auth_method=case.context.auth_method,
        time=case.context.time,
    )


@app.command("test")
def test(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="YAML files of cases.", exists=False)],
) -> None:
    """Run policy test cases against the current configuration; exit 1 on any mismatch."""
    services = state(ctx).services()
    cases = [(path, case) for path in files for case in load_cases(path).cases]
    passed = failed = 0
    for path, case in cases:
        try:
            result = services.authz.checks.check(_case_query(case))
            got = result.decision.effect.value
            why = "; ".join(result.decision.reasons)
        except Exception as exc:  # a case that cannot be evaluated fails, it never passes
            got, why = "error", f"{type(exc).__name__}: {exc}"
        if got == case.expect:
            passed += 1
            typer.echo(f"PASS {path.name}: {case.title()}")
        else:
            failed += 1
            typer.echo(f"FAIL {path.name}: {case.title()}: expected {case.expect}, got {got}")
            typer.echo(f"     {why}")
    typer.echo(f"{passed} passed, {failed} failed")
    if failed or not cases:
        raise typer.Exit(1)
