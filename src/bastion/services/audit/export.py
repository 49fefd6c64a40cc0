"""``bastion audit export``: the trail from a point in time, streamed a page at a time.

``json`` and ``ndjson`` exports are verifiable offline: they carry the stored checkpoints of
their range (and an anchor for the event before it) ahead of the events, and end with a seal,
a checkpoint signed at export time over the last exported event. Before a byte is written, the
whole stored trail is checked exactly as `bastion audit verify` checks it (the same limits on
the unsealed tail, in events and in time, every checkpoint, the start explained by retention):
a seal or an anchor signed over a trail that does not verify would launder a rewritten or cut
history with the real key. The
events are then streamed and must be the very chain that was checked, from the hash before
the first to the hash of the last. ``csv``, ``syslog`` and ``cef`` are for SIEMs: one event per
line, no checkpoints.
"""

from __future__ import annotations

import csv
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TextIO

from bastion import __version__
from bastion.backends.protocols import Storage
from bastion.core.audit import event_hash, format_timestamp
from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_to_json
from bastion.core.audit_formats import CSV_COLUMNS, ascii_json, cef_line, csv_row, json_line
from bastion.core.audit_formats import syslog_line as syslog_text
from bastion.core.audit_verify import SealWait
from bastion.core.jcs import CanonicalJSONError
from bastion.core.model import AuditEvent, AuditQuery
from bastion.errors import AuditIntegrityError
from bastion.services.audit.export_file import CHECKPOINT_KEY, DOCUMENT_FORMAT, HEADER_KEY
from bastion.services.audit.recorder import CheckpointSigning, RecordingStorage
from bastion.services.audit.verify import SignatureCheck, stored_events, verify_storage

ExportFormat = Literal["json", "ndjson", "csv", "syslog", "cef"]
FORMATS: tuple[ExportFormat, ...] = ("json", "ndjson", "csv", "syslog", "cef")
VERIFIABLE: tuple[ExportFormat, ...] = ("json", "ndjson")


@dataclass(frozen=True, slots=True)
class ExportPlan:
    first_seq: int
    last_seq: int
    stored_first_seq: int
    checkpoints: list[AuditCheckpoint]
    # The newest stored checkpoint inside the trail before ``first_seq``: a verifiable export
    # checks the trail from there (None: from the trail's start, as `bastion audit verify`).
    anchor_seq: int | None = None

    @property
    def count(self) -> int:
        return max(self.last_seq - self.first_seq + 1, 0)

    def steps(self, fmt: ExportFormat) -> int:
        """Events read: a verifiable export first checks the trail from its anchor."""
        start = self.stored_first_seq if self.anchor_seq is None else self.anchor_seq + 1
        checked = self.last_seq - start + 1 if fmt in VERIFIABLE else 0
        return checked + self.count


@dataclass(frozen=True, slots=True)
class ExportResult:
    events: int
    first_seq: int | None
    last_seq: int | None
    sealed: bool


@dataclass(frozen=True, slots=True)
class _Ends:
    """The first exported seq, the hash before it and the hash of the last, as verified."""

    first_seq: int
    before: str
    last: str


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
        before = tx.audit.checkpoints(from_seq=bounds[0], through_seq=start - 1)
        anchor = before[-1].seq if before else None
        return ExportPlan(start, end, bounds[0], checkpoints, anchor)


def export(
    storage: Storage,
    out: TextIO,
    *,
    fmt: ExportFormat,
    since: datetime | None,
    signer: CheckpointSigning,
    signature_valid: SignatureCheck,
    now: datetime,
    max_unsigned: int | None = None,
    seal_interval: timedelta | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the export to ``out``.

    A json or ndjson export is refused with `AuditIntegrityError`, before anything is
    written, when `bastion audit verify` would fail on the stored trail at ``now``; and left
    unsealed if the trail changes while it streams. ``max_unsigned`` and ``seal_interval``
    are verify's limits on the unsealed tail (``security.audit.checkpoints.every`` and
    ``interval``); by default, those of the recorder sealing ``storage``.
    """
    plan = plan_export(storage, since=since)
    if plan is None:
        if fmt == "json":
            out.write(f'{{"format":"{DOCUMENT_FORMAT}","checkpoints":[],"events":[],"seal":[]}}\n')
        return ExportResult(0, None, None, sealed=False)
    events = stored_events(storage, after_seq=plan.first_seq - 1, through_seq=plan.last_seq)
    checkpoints = list(plan.checkpoints)
    if fmt in VERIFIABLE:
        every, interval = _sealing(storage, max_unsigned, seal_interval)
        wait = SealWait(interval, now)
        ends = _verified_ends(storage, plan, signature_valid, every, wait, progress)
        events = _same_chain(events, ends)
        if plan.first_seq > 1 and all(c.seq != plan.first_seq - 1 for c in checkpoints):
            checkpoints.insert(0, signer.sign(plan.first_seq - 1, ends.before, now=now))
    writer = _Writer(out, fmt, plan, checkpoints, now=now)
    count, last_event = 0, None
    for event in events:
        writer.event(event)
        count, last_event = count + 1, event
        if progress is not None and count % 1000 == 0:
            progress(1000)
    seal = None
    if fmt in VERIFIABLE and last_event is not None:
        seal = signer.sign(last_event.seq, last_event.hash, now=now)
    writer.finish(seal)
    if progress is not None:
        progress(count % 1000)
    last_seq = last_event.seq if last_event is not None else None
    return ExportResult(count, plan.first_seq, last_seq, sealed=seal is not None)


def _sealing(
    storage: Storage, every: int | None, interval: timedelta | None
) -> tuple[int, timedelta]:
    """How many newest events may be unsigned, and how long: as the recorder leaves them."""
    if every is not None and interval is not None:
        return every, interval
    if not isinstance(storage, RecordingStorage):
        raise ValueError("export: the seal limits are needed for a storage without a recorder")
    seal = storage.recorder.seal
    return (seal.every if every is None else every, seal.interval if interval is None else interval)


def _verified_ends(
    storage: Storage,
    plan: ExportPlan,
    signature_valid: SignatureCheck,
    max_unsigned: int,
    wait: SealWait,
    progress: Callable[[int], None] | None,
) -> _Ends:
    """Verify the stored trail as `bastion audit verify` does, from the export's anchor (the
    newest checkpoint before its range, so a short recent export does not read the whole
    trail; from the start, and with retention's rule, when there is none); the hashes at
    the export's ends as verified. `AuditIntegrityError` if it does not verify."""
    seen: dict[str, str] = {}

    def note(event: AuditEvent) -> None:
        if event.seq == plan.first_seq:
            seen["before"] = event.prev_hash  # linked to its predecessor, or retention's cut
        if event.seq == plan.last_seq:
            seen["last"] = event.hash

    report = verify_storage(
        storage,
        signature_valid=signature_valid,
        max_unsigned=max_unsigned,
        wait=wait,
        progress=progress,
        watch=note,
        anchor_seq=plan.anchor_seq,
    )
    if not report.ok:
        assert report.first_broken_seq is not None
        raise AuditIntegrityError(report.first_broken_seq, f"{report.reason}; nothing exported")
    if seen.keys() != {"before", "last"}:  # removed since the export was planned
        raise AuditIntegrityError(plan.first_seq, "the trail changed; nothing exported")
    return _Ends(plan.first_seq, seen["before"], seen["last"])


def _same_chain(events: Iterable[AuditEvent], ends: _Ends) -> Iterator[AuditEvent]:
    """``events`` as long as they are the chain just verified: each links to the one before
    and matches its hash, from ``ends.before`` to ``ends.last``. A change made since (the
    export reads the trail a second time) stops it before the seal."""
    previous, seq = ends.before, ends.first_seq - 1
    for event in events:
        seq = event.seq
        if event.prev_hash != previous or not _hash_matches(event):
            raise _changed(seq)
        previous = event.hash
        yield event
    if previous != ends.last:
        raise _changed(seq + 1)


def _hash_matches(event: AuditEvent) -> bool:
    try:
        return event_hash(event) == event.hash
    except CanonicalJSONError:  # a body bastion could not have written
        return False


def _changed(seq: int) -> AuditIntegrityError:
    return AuditIntegrityError(
        seq, "the trail changed while it was exported; the export is incomplete and not sealed"
    )


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
