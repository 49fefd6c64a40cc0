"""Audit events as lines for SIEMs: NDJSON, CSV, RFC 5424 syslog and ArcSight CEF.

Every format writes one event per line whatever the event holds: user-supplied text (names,
paths, user agents) can carry newlines, ANSI escapes or JSON fragments, so control
characters are always escaped and JSON is ASCII-only. The JSON forms keep every field; CSV,
syslog headers and CEF carry the fields SIEMs index, plus ``seq`` and ``hash`` to find the
full event.
"""

from __future__ import annotations

import json
from typing import Any

from bastion.core.audit import event_to_json, format_timestamp
from bastion.core.model import AuditEvent

TRUNCATED_MARK = "...[truncated]"


def fit(text: str, limit: int) -> str:
    """``text`` cut at its end to at most ``limit`` characters, the cut marked
    (`TRUNCATED_MARK`); as it is when it already fits."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED_MARK)] + TRUNCATED_MARK


_ASCII_JSON = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_ESCAPE_CONTROLS = {c: f"\\u{c:04x}" for c in _CONTROLS} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_CSV_FORMULA_START = ("=", "+", "-", "@")

CSV_COLUMNS = (
    "timestamp",
    "eventId",
    "tenant",
    "seq",
    "action",
    "outcome",
    "actorType",
    "actorId",
    "actorIp",
    "resourceType",
    "resourceId",
    "requestMethod",
    "requestPath",
    "requestId",
    "details",
    "prevHash",
    "hash",
)

FACILITIES = {
    "kern": 0,
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "authpriv": 10,
    **{f"local{n}": 16 + n for n in range(8)},
}
_SEVERITY = {"success": 6, "denied": 5, "failure": 4}
_CEF_SEVERITY = {"success": 3, "denied": 6, "failure": 5}


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (one line, no ANSI)."""
    return text.translate(_ESCAPE_CONTROLS)


def json_line(event: AuditEvent) -> str:
    """The event's JSON on one line, ASCII only (what ndjson exports and destinations carry)."""
    return _ASCII_JSON.encode(event_to_json(event))


def ascii_json(value: Any) -> str:
    return _ASCII_JSON.encode(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def csv_row(event: AuditEvent) -> list[str]:
    """One CSV record (for `csv.writer`); cells are one-line and never start a formula."""
    actor, resource, request = event.actor, event.resource, event.request
    cells = [
        format_timestamp(event.timestamp),
        event.event_id,
        event.tenant,
        str(event.seq),
        event.action,
        event.outcome,
        _text(actor.get("type")),
        _text(actor.get("id")),
        _text(actor.get("ip")),
        _text(resource.get("type")),
        _text(resource.get("id")),
        _text(request.get("method")),
        _text(request.get("path")),
        _text(request.get("requestId")),
        ascii_json(event.details),
        event.prev_hash,
        event.hash,
    ]
    return [_csv_cell(cell) for cell in cells]


def _csv_cell(cell: str) -> str:
    cell = printable(cell)
    # OWASP CSV injection: a leading quote keeps spreadsheets from evaluating the cell.
    return "'" + cell if cell.startswith(_CSV_FORMULA_START) else cell


def header_field(text: str, limit: int) -> str:
    cleaned = "".join(ch if 33 <= ord(ch) <= 126 else "_" for ch in text)[:limit]
    return cleaned or "-"


def syslog_line(
    event: AuditEvent,
    *,
    hostname: str,
    app_name: str = "bastion",
    procid: str = "-",
    facility: str = "authpriv",
    max_bytes: int | None = None,
) -> str:
    """An RFC 5424 message: header fields from the event, the event's JSON as MSG.

    MSG is ASCII JSON, so no BOM is needed (RFC 5424 section 6.4, MSG-ANY). A message over
    ``max_bytes`` carries the event without its details, which the database keeps.
    """
    severity = _SEVERITY.get(event.outcome, 5)
    header = (
        f"<{FACILITIES[facility] * 8 + severity}>1 {format_timestamp(event.timestamp)}"
        f" {header_field(hostname, 255)} {header_field(app_name, 48)}"
        f" {header_field(procid, 128)} {header_field(event.action, 32)} -"
    )
    line = f"{header} {json_line(event)}"
    if max_bytes is not None and len(line) > max_bytes:
        body = event_to_json(event)
        body["details"] = {"omitted": "too large for syslog; the database has the event"}
        line = f"{header} {ascii_json(body)}"
    return line


def _cef_header(value: str) -> str:
    return printable(value.replace("\\", "\\\\").replace("|", "\\|"))


def _cef_value(value: Any) -> str:
    text = _text(value).replace("\\", "\\\\").replace("=", "\\=")
    return printable(text)


def cef_line(event: AuditEvent, *, version: str) -> str:
    """ArcSight CEF:0 with the standard keys and labelled custom strings for the rest."""
    severity = _CEF_SEVERITY.get(event.outcome, 5)
    actor, request = event.actor, event.request
    resource = "/".join(str(v) for v in (event.resource.get("type"), event.resource.get("id")) if v)
    pairs: list[tuple[str, Any]] = [
        ("rt", int(event.timestamp.timestamp() * 1000)),
        ("act", event.action),
        ("outcome", event.outcome),
        ("suser", actor.get("id")),
        ("src", actor.get("ip")),
        ("requestMethod", request.get("method")),
        ("request", request.get("path")),
        ("requestClientApplication", actor.get("userAgent")),
        ("cs1Label", "tenant"),
        ("cs1", event.tenant),
        ("cs2Label", "resource"),
        ("cs2", resource),
        ("cs3Label", "eventId"),
        ("cs3", event.event_id),
        ("cs4Label", "hash"),
        ("cs4", event.hash),
        ("cs5Label", "requestId"),
        ("cs5", request.get("requestId")),
        ("cn1Label", "seq"),
        ("cn1", event.seq),
    ]
    values = dict(pairs)
    # An empty value is left out, and with it its label (no cs5Label=requestId without a cs5).
    extension = " ".join(
        f"{key}={_cef_value(value)}"
        for key, value in pairs
        if value and values.get(key.removesuffix("Label"))
    )
    header = "|".join(
        _cef_header(part)
        for part in ("Bastion", "bastion", version, event.action, event.action, str(severity))
    )
    return f"CEF:0|{header}|{extension}"
