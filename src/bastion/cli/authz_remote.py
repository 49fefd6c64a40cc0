"""``bastion authz check|explain`` in remote mode: ``POST /v1/authz/check`` on the bastion this
terminal logged in to, printed as the local commands print a decision."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.tree import Tree

from bastion.cli.remote import RemoteClient


def ask(
    remote: RemoteClient,
    principal: str,
    action: str,
    resource: str,
    tenant: str | None,
    target: str | None,
    scopes: str | None,
    ip: str | None,
    mfa: bool,
) -> dict[str, Any]:
    """The admin API's answer for one request in the login's tenant."""
    remote.in_tenant(tenant)
    remote.in_tenant(target)  # acting across tenants has no API counterpart
    body: dict[str, Any] = {
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": {"clientIp": ip, "mfa": mfa, "authMethod": "cli"},
    }
    if scopes:
        body["scopes"] = [s.strip() for s in scopes.split(",") if s.strip()]
    answer: dict[str, Any] = remote.post("/authz/check", body)
    return answer


def check(remote: RemoteClient, *query: Any, as_json: bool) -> None:
    """Print allow or deny (exit status 0 or 1)."""
    answer = ask(remote, *query)
    if as_json:
        answer = {**answer, "tenant": remote.tenant, "target": remote.tenant}
        answer.pop("allowed", None)
    typer.echo(json.dumps(answer) if as_json else answer["effect"])
    if answer["effect"] != "allow":
        raise typer.Exit(1)


def explain(remote: RemoteClient, *query: Any) -> None:
    """Print the decision and its reasons as a tree (exit status 0 allow, 1 deny)."""
    answer = ask(remote, *query)
    title = (
        f"{answer['effect'].upper()}  {answer['principal']} → {answer['action']} "
        f"{answer['resource']} (tenant {remote.tenant}, permission {answer['permission']})"
    )
    tree = Tree(title)
    marks = {True: "pass", False: "FAIL", None: "n/a"}
    for stage in answer["checks"]:
        node = tree.add(f"{stage['stage']}: {marks[stage['passed']]}")
        for reason in stage["reasons"]:
            node.add(reason)
    Console(width=200, highlight=False).print(tree)
    if answer["effect"] != "allow":
        raise typer.Exit(1)
