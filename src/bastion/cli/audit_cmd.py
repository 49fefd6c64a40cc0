"""``bastion audit``: query the trail, show its state, keys, checkpoints and retention.

Export and verification live in `bastion.cli.audit_io_cmd`; both register here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bastion.cli import audit_io_cmd
from bastion.cli.audit_io_cmd import counted, parse_since
from bastion.cli.context import state
from bastion.cli.remote import RemoteClient, unsupported
from bastion.config.units import parse_moment
from bastion.core.audit import MAX_SEQ, event_to_json, format_timestamp
from bastion.core.model import AUDIT_OUTCOMES, AuditQuery
from bastion.services.audit import RecordingAuditStore
from bastion.services.audit.retention import cutoff_before, prune
from bastion.wiring_audit import checkpoint_signer_from, spool_states

app = typer.Typer(help="The audit trail.", no_args_is_help=True)
REMOTE_PAGE = 1000  # the admin API's largest page
audit_io_cmd.register(app)


@app.command("list")
def list_events(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="e.g. 1h, 7d, or an RFC 3339 time.")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. pattern.execute")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Actor id.")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="type/id")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="success | failure | denied")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    after: Annotated[
        int | None, typer.Option("--after", min=0, max=MAX_SEQ, help="Only events after this seq.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List events, oldest first, filtered by every option given."""
    if outcome is not None and outcome not in AUDIT_OUTCOMES:
        choices = ", ".join(AUDIT_OUTCOMES)
        raise typer.BadParameter(f"must be one of {choices}", param_hint="--outcome")
    remote = state(ctx).remote()
    if remote is not None:
        if after is not None:
            unsupported("`bastion audit list --after`")
        filters = {"since": since, "action": action, "actor": actor, "resource": resource}
        found = _remote_events(remote, limit, outcome=outcome, tenant=tenant, **filters)
    else:
        services = state(ctx).services()
        query = AuditQuery(
            since=_moment(since, "--since", services.clock.now()),
            action=action,
            actor=actor,
            resource=resource,
            outcome=outcome,
            tenant=tenant,
            after_seq=after,
            limit=limit,
        )
        with services.storage.transaction() as tx:
            found = [event_to_json(event) for event in tx.audit.query(query)]
    if as_json:
        for document in found:
            typer.echo(json.dumps(document, ensure_ascii=True))
        return
    table = Table("Seq", "Time", "Action", "Outcome", "Actor", "Resource", "Path")
    for event in found:
        resource_text = "/".join(
            str(v) for v in (event["resource"].get("type"), event["resource"].get("id")) if v
        )
        table.add_row(
            str(event["seq"]),
            event["timestamp"],
            _cell(event["action"]),
            _cell(event["outcome"]),
            _cell(event["actor"].get("id") or "-"),
            _cell(resource_text or "-"),
            _cell(event["request"].get("path", "")),
        )
    Console(width=200).print(table)


def _moment(value: str | None, option: str, now: datetime) -> datetime | None:
    """What the admin API reads for ``since`` (`parse_moment`), so local and remote agree."""
    try:
        return parse_moment(value, now=now) if value is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _remote_events(remote: RemoteClient, limit: int, **filters: str | None) -> list[Any]:
    """Up to ``limit`` events from the admin API, a page at a time."""
    found: list[Any] = []
    cursor = None
    while len(found) < limit:
        page = remote.get(
            "/audit/events", limit=min(limit - len(found), REMOTE_PAGE), cursor=cursor, **filters
        )
        found += page["events"]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return found


def _cell(value: object) -> str:
    """Terminal-safe text: control characters (newlines, ANSI escapes) shown escaped."""
    text = str(value)
    printable = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return escape(printable)


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The chain head, the last checkpoint, and each destination's delivery state."""
    services = state(ctx).services()
    with services.storage.transaction() as tx:
        bounds = tx.audit.bounds()
        head_seq, head_hash = tx.audit.head()
        last = tx.audit.last_checkpoint()
    report: dict[str, Any] = {
        "firstSeq": bounds[0] if bounds else None,
        "headSeq": head_seq,
        "headHash": head_hash,
        "lastCheckpoint": None,
        "unsealed": head_seq - (last.seq if last else 0),
        "destinations": {},
    }
    if last is not None:
        report["lastCheckpoint"] = {
            "seq": last.seq,
            "timestamp": format_timestamp(last.timestamp),
            "keyId": last.key_id,
        }
    for name, spool_state in spool_states(services.config).items():
        report["destinations"][name] = {
            "pending": spool_state.pending,
            "delivered": spool_state.delivered,
            "dropped": spool_state.dropped,
            "failures": spool_state.failures,
            "failuresInARow": spool_state.consecutive_failures,
            "lastError": spool_state.last_error or None,
            "lastErrorAt": spool_state.last_error_at or None,
            "lastDeliveryAt": spool_state.last_delivery_at or None,
            "nextAttemptAt": spool_state.next_attempt_at or None,
        }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=True))
        return
    typer.echo(_status_text(report))


def _status_text(report: dict[str, Any]) -> str:
    lines = []
    if report["firstSeq"] is None:
        lines.append("chain: empty")
    else:
        lines.append(
            f"chain: events {report['firstSeq']}-{report['headSeq']},"
            f" head hash {report['headHash'][:16]}…"
        )
    last = report["lastCheckpoint"]
    if last is None:
        lines.append("checkpoint: none yet")
    else:
        lines.append(
            f"checkpoint: seq {last['seq']} at {last['timestamp']} (key {last['keyId']});"
            f" {counted(report['unsealed'], 'newer event')} not yet sealed"
        )
    if not report["destinations"]:
        lines.append("destinations: database only")
    for name, d in report["destinations"].items():
        health = "ok" if not d["failuresInARow"] else f"FAILING ({d['failuresInARow']} in a row)"
        lines.append(
            f"destination {name}: {health}; pending {d['pending']}, delivered {d['delivered']},"
            f" dropped {d['dropped']}, failures {d['failures']}"
        )
        if d["failuresInARow"]:
            lines.append(
                f"  last error: {_cell(d['lastError'])} at {d['lastErrorAt']};"
                f" next attempt {d['nextAttemptAt']}"
            )
    return "\n".join(lines)


@app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """Print the PEM public key that verifies this installation's checkpoints."""
    signer = checkpoint_signer_from(state(ctx).load())
    typer.echo(signer.public_pem().decode().rstrip("\n"))
    typer.echo(f"key id {signer.key_id}", err=True)


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Seal the chain now: a signed checkpoint at the current head."""
    services = state(ctx).services()
    with services.storage.transaction() as tx:
        store = tx.audit
        made = store.seal_now() if isinstance(store, RecordingAuditStore) else None
        head = store.head()
    if made is None:
        typer.echo(f"the head (seq {head[0]}) is already sealed")
    else:
        typer.echo(f"checkpoint at seq {made.seq} signed by key {made.key_id}")


@app.command("prune")
def prune_events(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Default: security.audit.retention."),
    ] = None,
) -> None:
    """Remove events older than the retention period, keeping the rest verifiable."""
    services = state(ctx).services()
    window = parse_since(older_than, "--older-than")
    if window is None:
        window = services.config.security.audit.retention
    if window is None:
        raise typer.BadParameter(
            "no retention period: set security.audit.retention or pass it",
            param_hint="--older-than",
        )
    now = services.clock.now()
    result = prune(
        services.storage,
        cutoff=cutoff_before(now, window),
        now=now,
        tenant=services.config.security.default_tenant,
    )
    if result.removed:
        typer.echo(
            f"removed {result.removed} events; the trail now starts after seq {result.anchor_seq}"
        )
    else:
        typer.echo("nothing to remove")
