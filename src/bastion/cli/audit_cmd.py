"""``bastion audit``: query the audit trail."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bastion.cli.context import state
from bastion.config.units import parse_duration
from bastion.core.audit import event_to_json, format_timestamp
from bastion.core.model import AuditQuery

app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@app.command("list")
def list_events(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="e.g. 1h, 7d.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. pattern.execute")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Actor id.")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="type/id")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="success | failure | denied")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List events, oldest first, filtered by every option given."""
    try:
        window = parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    services = state(ctx).services()
    query = AuditQuery(
        since=services.clock.now() - window if window is not None else None,
        action=action,
        actor=actor,
        resource=resource,
        outcome=outcome,
        tenant=tenant,
        limit=limit,
    )
    with services.storage.transaction() as tx:
        found = tx.audit.query(query)
    if as_json:
        for event in found:
            typer.echo(json.dumps(event_to_json(event), ensure_ascii=True))
        return
    table = Table("Seq", "Time", "Action", "Outcome", "Actor", "Resource", "Path")
    for event in found:
        resource_text = "/".join(
            str(v) for v in (event.resource.get("type"), event.resource.get("id")) if v
        )
        table.add_row(
            str(event.seq),
            format_timestamp(event.timestamp),
            _cell(event.action),
            _cell(event.outcome),
            _cell(event.actor.get("id") or "-"),
            _cell(resource_text or "-"),
            _cell(event.request.get("path", "")),
        )
    Console(width=200).print(table)


def _cell(value: object) -> str:
    """Terminal-safe text: control characters (newlines, ANSI escapes) shown escaped."""
    text = str(value)
    printable = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return escape(printable)
