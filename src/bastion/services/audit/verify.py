"""``bastion audit verify``: the stored trail, or an export file checked offline.

The database is read a page at a time, each page in its own short transaction (a long read
would hold SQLite's write lock), up to the head seen at the start. Besides the chain, what is
read back must be what the hash covers: the index columns, a timestamp no finer than the
milliseconds hashed (on SQLite, the very text bastion writes for it), and a start after seq 1
only where a signed retention record cut it (`bastion.services.audit.retention`). The newest
events may be unsealed, but no more of them, nor for longer, than a running bastion leaves
(`bastion.core.audit_verify.SealWait`). Export files (NDJSON or
the JSON document `bastion.services.audit.export` writes, plain or gzipped, several in order)
are read twice by `bastion.services.audit.export_file`, which refuses any other file: once for
their checkpoints, once for their events. Offline verification fails closed: a file with no
events proves nothing, so it is refused rather than reported as an empty trail that verifies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bastion.backends.audit_rows import index_columns_match, timestamp_column_matches
from bastion.backends.protocols import IndexedAuditRow, Storage
from bastion.core.audit import event_hash as compute_hash
from bastion.core.audit import hash_canonical
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.audit_verify import ChainVerifier, SealWait, VerifyReport
from bastion.core.jcs import CanonicalJSONError
from bastion.core.model import AuditEvent
from bastion.errors import RequestRejectedError
from bastion.services.audit.export_file import (
    ExportRecord,
    ExportScan,
    exported_events,
    refuse,
    scan_export,
    twice,
)
from bastion.services.audit.retention import retention_cut

PAGE = 5000
NO_EVENTS = (
    "holds no audit events, so there is nothing to verify (an export of an empty trail"
    " carries no signed seal)"
)

SignatureCheck = Callable[[AuditCheckpoint], bool]
Progress = Callable[[int], None]
Watch = Callable[[AuditEvent], None]


def stored_events(storage: Storage, *, after_seq: int, through_seq: int) -> Iterator[AuditEvent]:
    """Events after_seq < seq <= through_seq, a page per short transaction."""
    for row in _stored_rows(storage, after_seq=after_seq, through_seq=through_seq):
        yield row.event


def _stored_rows(
    storage: Storage, *, after_seq: int, through_seq: int
) -> Iterator[IndexedAuditRow]:
    last = after_seq
    while last < through_seq:
        with storage.transaction() as tx:
            rows = tx.audit.iterate_indexed(after_seq=last, batch=PAGE, through_seq=through_seq)
            page = list(itertools.islice(rows, PAGE))
        if not page:
            return
        yield from page
        last = page[-1].event.seq


def verify_storage(
    storage: Storage,
    *,
    signature_valid: SignatureCheck,
    max_unsigned: int | None,
    wait: SealWait | None,
    extra_checkpoints: Sequence[AuditCheckpoint] = (),
    progress: Progress | None = None,
    watch: Watch | None = None,
    anchor_seq: int | None = None,
) -> VerifyReport:
    """Verify every stored event against the chain and the stored (and extra) checkpoints.

    ``max_unsigned`` and ``wait`` say how many of the newest events may be unsealed, and for
    how long (None: no limit). With ``anchor_seq``, only the events after it: the first must
    link to the signed stored checkpoint at ``anchor_seq``, and what lies before it (and
    whether retention explains where the trail starts) is not looked at. An export of a
    later range needs no more. ``watch`` sees each event once it has verified (an export
    notes the hashes at its ends).
    """
    with storage.transaction() as tx:
        bounds = tx.audit.bounds()
        stored = tx.audit.checkpoints(from_seq=anchor_seq or 0)
    verifier = ChainVerifier(
        [*stored, *extra_checkpoints],
        signature_valid=signature_valid,
        max_unsigned=max_unsigned,
        cut_needs_record=anchor_seq is None,
        wait=wait,
    )
    if bounds is not None:
        first = bounds[0] if anchor_seq is None else anchor_seq + 1
        for row in _stored_rows(storage, after_seq=first - 1, through_seq=bounds[1]):
            event = row.event
            verifier.add(
                event.seq,
                event.prev_hash,
                event.hash,
                _stored_hash(event),
                timestamp=event.timestamp,
            )
            _check_stored(verifier, row)
            if verifier.failed:
                break
            if watch is not None:
                watch(event)
            if progress is not None and event.seq % PAGE == 0:
                progress(PAGE)
    return verifier.finish()


def _stored_hash(event: AuditEvent) -> str:
    """The hash of a stored event's content; a body no canonical JSON can hold (a NaN, an
    integer beyond 2**53, which JSON parsing accepts) was not written by bastion, so it
    matches no hash."""
    try:
        return compute_hash(event)
    except CanonicalJSONError:
        return "not canonical JSON"


def _check_stored(verifier: ChainVerifier, row: IndexedAuditRow) -> None:
    """What the hash does not cover but queries read: the index columns, the timestamp below
    the millisecond and, where it is text, its spelling (time filters compare the column);
    and a retention record's cut."""
    event = row.event
    if not index_columns_match(event, row.actor_id, row.resource_key):
        verifier.reject(
            event.seq, f"event {event.seq} was changed: its index columns do not match it"
        )
    if not timestamp_column_matches(event, row.timestamp_text):
        verifier.reject(
            event.seq,
            f"event {event.seq} was changed: its timestamp column is not the text bastion"
            " writes for its time (a time filter would place it elsewhere)",
        )
    if event.timestamp.microsecond % 1000:
        verifier.reject(
            event.seq,
            f"event {event.seq} was changed: its timestamp column is finer than the"
            " milliseconds its hash covers",
        )
    cut = retention_cut(event)
    if cut is not None:
        verifier.retention_cut(*cut, record_seq=event.seq)


def read_export_checkpoints(paths: Sequence[Path]) -> list[AuditCheckpoint]:
    """The checkpoints of files kept elsewhere (``--checkpoints``): each must hold one."""
    found: list[AuditCheckpoint] = []
    for path in paths:
        scan = scan_export(path)
        if not scan.checkpoints:
            raise refuse(path, "holds no checkpoints to check the trail against")
        found += scan.checkpoints
    return found


def _exported_hash(record: dict[str, Any]) -> str:
    """The hash of an exported event as written: its JSON without ``hash``, canonical."""
    value = {key: item for key, item in record.items() if key != "hash"}
    return hash_canonical(str(record["prevHash"]), value)[1]


def _chain_fields(
    verifier: ChainVerifier, path: Path, record: ExportRecord, number: int
) -> tuple[int, str, str, str] | None:
    """(seq, prevHash, hash, recomputed hash) of the ``number``-th exported event; None when
    it cannot be hashed as written, after telling ``verifier`` of the break at its seq (or
    its position when it has none)."""
    value = record.value
    seq = value.get("seq")
    position = seq if isinstance(seq, int) else number
    if record.duplicate is not None:
        verifier.reject(position, f"{path}: {twice(record.line, record.duplicate)}")
        return None
    try:
        return (
            int(value["seq"]),
            str(value["prevHash"]),
            str(value["hash"]),
            _exported_hash(value),
        )
    except (KeyError, TypeError, ValueError, CanonicalJSONError):
        verifier.add(position, "", "", "unreadable")
        return None


def verify_export(
    paths: Sequence[Path],
    *,
    signature_valid: SignatureCheck,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify export files offline: every event must be covered by a valid checkpoint.

    A file that is not a json or ndjson export, or holds no events, is a
    `RequestRejectedError`: there is nothing signed in it, so it proves nothing.
    """
    if not paths:
        raise RequestRejectedError("no export file to verify")
    scans = [scan_export(path) for path in paths]
    for scan in scans:
        if not scan.events:
            raise refuse(scan.path, NO_EVENTS)
    checkpoints = [checkpoint for scan in scans for checkpoint in scan.checkpoints]
    verifier = ChainVerifier(
        checkpoints, signature_valid=signature_valid, max_unsigned=0, cut_needs_record=False
    )
    records = ((path, record) for path in paths for record in exported_events(path))
    for number, (path, record) in enumerate(records, start=1):
        read = _chain_fields(verifier, path, record, number)
        if read is None:
            break
        verifier.add(*read)
        if verifier.failed:
            break
        if progress is not None and number % PAGE == 0:
            progress(PAGE)
    report = verifier.finish()
    return _check_declared_ranges(report, scans) if report.ok else report


def _check_declared_ranges(report: VerifyReport, scans: Sequence[ExportScan]) -> VerifyReport:
    """An export whose events are not the range its header names was cut (or added to).

    The header is not signed, so this only catches a cut that left the header alone; a cut
    at a stored checkpoint that also rewrites the header still looks like a shorter export.
    """
    for scan in scans:
        if scan.declared is None or scan.first_seq is None or scan.last_seq is None:
            continue
        (first, last), path = scan.declared, scan.path
        if scan.first_seq > first:
            broken = first
            reason = f"{path} starts at seq {scan.first_seq} but its header says {first} (cut)"
        elif scan.last_seq < last:
            broken = scan.last_seq + 1
            reason = f"{path} ends at seq {scan.last_seq} but its header says {last} (truncated)"
        elif scan.first_seq < first or scan.last_seq > last:
            broken = scan.first_seq if scan.first_seq < first else last + 1
            reason = f"{path} holds events outside seq {first}-{last}, the range of its header"
        else:
            continue
        return replace(report, first_broken_seq=broken, reason=reason)
    return report
