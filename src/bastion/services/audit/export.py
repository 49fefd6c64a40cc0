"""``bastion audit export``: the trail from a point in time, streamed a page at a time.

``json`` and ``ndjson`` exports are verifiable offline: they carry the stored checkpoints of
their range (and an anchor for the event before it) ahead of the events, and end with a seal,
a checkpoint signed at export time over the last exported event. The events are verified as
they stream, so an export never seals a trail that does not verify. ``csv``, ``syslog`` and
``cef`` are for SIEMs: one event per line, no checkpoints.
"""

from __future__ import annotations

import csv
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TextIO

from bastion import __version__
from bastion.backends.protocols import Storage
from bastion.core.audit import event_hash, format_timestamp
from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_to_json
from bastion.core.audit_formats import CSV_COLUMNS, ascii_json, cef_line, csv_row, json_line
from bastion.core.audit_formats import syslog_line as syslog_text
from bastion.core.audit_verify import ChainVerifier
from bastion.core.model import AuditEvent, AuditQuery
from bastion.errors import StorageError
from bastion.services.audit.export_file import CHECKPOINT_KEY, DOCUMENT_FORMAT, HEADER_KEY
from bastion.services.audit.recorder import CheckpointSigning
from bastion.services.audit.verify import SignatureCheck, stored_events

ExportFormat = Literal["json", "ndjson", "csv", "syslog", "cef"]
FORMATS: tuple[ExportFormat, ...] = ("json", "ndjson", "csv", "syslog", "cef")


@dataclass(frozen=True, slots=True)
class ExportPlan:
    first_seq: int
    last_seq: int
    first_prev_hash: str
    checkpoints: list[AuditCheckpoint]

    @property
    def count(self) -> int:
        return max(self.last_seq - self.first_seq + 1, 0)


@dataclass(frozen=True, slots=True)
class ExportResult:
    events: int
    first_seq: int | None
    last_seq: int | None
    sealed: bool


def plan_export(storage: Storage, *, since: datetime | None) -> ExportPlan | None:
    """The seq range to export (from the first event at or after ``since`` to the head)."""
    with storage.transaction() as tx:
        bounds = tx.audit.bounds()
        if bounds is None:
            return None
        first = tx.audit.query(AuditQuery(since=since, limit=1))
        if not first:
            return None
        start, end = first[0].seq, bounds[1]
        checkpoints = tx.audit.checkpoints(from_seq=start - 1, through_seq=end)
        return ExportPlan(start, end, first[0].prev_hash, checkpoints)


def export(
    storage: Storage,
    out: TextIO,
    *,
    fmt: ExportFormat,
    since: datetime | None,
    signer: CheckpointSigning,
    signature_valid: SignatureCheck,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the export to ``out``; `StorageError` if the trail does not verify on the way."""
    plan = plan_export(storage, since=since)
    if plan is None:
        if fmt == "json":
            out.write(f'{{"format":"{DOCUMENT_FORMAT}","checkpoints":[],"events":[],"seal":[]}}\n')
        return ExportResult(0, None, None, sealed=False)
    verifiable = fmt in ("json", "ndjson")
    checkpoints = list(plan.checkpoints)
    if verifiable and plan.first_seq > 1 and all(c.seq != plan.first_seq - 1 for c in checkpoints):
        checkpoints.insert(0, signer.sign(plan.first_seq - 1, plan.first_prev_hash, now=now))
    writer = _Writer(out, fmt, plan, checkpoints, now=now)
    verifier = ChainVerifier(checkpoints, signature_valid=signature_valid, max_unsigned=None)
    count, last_event = 0, None
    for event in stored_events(storage, after_seq=plan.first_seq - 1, through_seq=plan.last_seq):
        if verifiable:
            verifier.add(event.seq, event.prev_hash, event.hash, event_hash(event))
            if verifier.failed:
                report = verifier.finish()
                raise StorageError(
                    f"the trail does not verify at seq {report.first_broken_seq}: "
                    f"{report.reason}; the export is incomplete and not sealed"
                )
        writer.event(event)
        count, last_event = count + 1, event
        if progress is not None and count % 1000 == 0:
            progress(1000)
    seal = None
    if verifiable and last_event is not None:
        seal = signer.sign(last_event.seq, last_event.hash, now=now)
    writer.finish(seal)
    if progress is not None:
        progress(count % 1000)
    last_seq = last_event.seq if last_event is not None else None
    return ExportResult(count, plan.first_seq, last_seq, sealed=seal is not None)


class _Writer:
    def __init__(
        self,
        out: TextIO,
        fmt: ExportFormat,
        plan: ExportPlan,
        checkpoints: list[AuditCheckpoint],
        *,
        now: datetime,
    ) -> None:
        self.out, self.fmt = out, fmt
        self._first = True
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        self._hostname = socket.gethostname()
        lines = [ascii_json({CHECKPOINT_KEY: checkpoint_to_json(c)}) for c in checkpoints]
        header = {
            "format": DOCUMENT_FORMAT,
            "firstSeq": plan.first_seq,
            "lastSeq": plan.last_seq,
            "exportedAt": format_timestamp(now),
        }
        if fmt == "ndjson":
            out.write(ascii_json({HEADER_KEY: header}) + "\n")
            out.writelines(line + "\n" for line in lines)
        elif fmt == "json":
            out.write(ascii_json(header)[:-1] + ',\n"checkpoints":[\n')
            out.write(",\n".join(lines) + ("\n" if lines else "") + '],\n"events":[\n')
        elif self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)

    def event(self, event: AuditEvent) -> None:
        if self.fmt == "ndjson":
            self.out.write(json_line(event) + "\n")
        elif self.fmt == "json":
            self.out.write(("" if self._first else ",\n") + json_line(event))
        elif self._csv is not None:
            self._csv.writerow(csv_row(event))
        elif self.fmt == "syslog":
            self.out.write(syslog_text(event, hostname=self._hostname) + "\n")
        else:
            self.out.write(cef_line(event, version=__version__) + "\n")
        self._first = False

    def finish(self, seal: AuditCheckpoint | None) -> None:
        line = ascii_json({CHECKPOINT_KEY: checkpoint_to_json(seal)}) if seal else None
        if self.fmt == "ndjson" and line:
            self.out.write(line + "\n")
        elif self.fmt == "json":
            self.out.write(("\n" if not self._first else "") + '],\n"seal":[\n')
            self.out.write((line + "\n" if line else "") + "]}\n")
