"""``bastion audit verify``: the stored trail, or an export file checked offline.

The database is read a page at a time, each page in its own short transaction (a long read
would hold SQLite's write lock), up to the head seen at the start. Export files (NDJSON or
the JSON document `bastion.services.audit.export` writes, plain or gzipped, several in order)
are read twice: once for their checkpoints, once for their events.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from bastion.backends.audit_rows import actor_id, resource_key
from bastion.backends.protocols import Storage
from bastion.core.audit import event_hash as compute_hash
from bastion.core.audit import hash_canonical
from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_from_json
from bastion.core.audit_verify import ChainVerifier, VerifyReport
from bastion.core.jcs import CanonicalJSONError
from bastion.core.model import AuditEvent
from bastion.errors import RequestRejectedError

CHECKPOINT_KEY = "auditCheckpoint"
HEADER_KEY = "auditExport"
PAGE = 5000

SignatureCheck = Callable[[AuditCheckpoint], bool]
Progress = Callable[[int], None]


def stored_events(storage: Storage, *, after_seq: int, through_seq: int) -> Iterator[AuditEvent]:
    """Events after_seq < seq <= through_seq, a page per short transaction."""
    for event, _, _ in _stored_rows(storage, after_seq=after_seq, through_seq=through_seq):
        yield event


def _stored_rows(
    storage: Storage, *, after_seq: int, through_seq: int
) -> Iterator[tuple[AuditEvent, str, str]]:
    last = after_seq
    while last < through_seq:
        with storage.transaction() as tx:
            rows = tx.audit.iterate_indexed(after_seq=last, batch=PAGE, through_seq=through_seq)
            page = list(itertools.islice(rows, PAGE))
        if not page:
            return
        yield from page
        last = page[-1][0].seq


def verify_storage(
    storage: Storage,
    *,
    signature_valid: SignatureCheck,
    max_unsigned: int | None,
    extra_checkpoints: Sequence[AuditCheckpoint] = (),
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify every stored event against the chain and the stored (and extra) checkpoints."""
    with storage.transaction() as tx:
        bounds = tx.audit.bounds()
        stored = tx.audit.checkpoints()
    verifier = ChainVerifier(
        [*stored, *extra_checkpoints], signature_valid=signature_valid, max_unsigned=max_unsigned
    )
    if bounds is not None:
        rows = _stored_rows(storage, after_seq=bounds[0] - 1, through_seq=bounds[1])
        for event, actor_column, resource_column in rows:
            verifier.add(event.seq, event.prev_hash, event.hash, compute_hash(event))
            if (actor_column, resource_column) != (actor_id(event), resource_key(event)):
                verifier.reject(
                    event.seq, f"event {event.seq} was changed: its index columns do not match it"
                )
            if verifier.failed:
                break
            if progress is not None and event.seq % PAGE == 0:
                progress(PAGE)
    return verifier.finish()


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _records(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """Every JSON object of the files: NDJSON lines, or the lines of an export document."""
    for path in paths:
        with _open(path) as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.strip().rstrip(",")
                if not line.startswith("{") or not line.endswith("}"):
                    continue  # the JSON document's own brackets and key lines
                try:
                    value = json.loads(line)
                except ValueError:
                    raise RequestRejectedError(f"{path.name}:{number}: not JSON") from None
                if isinstance(value, dict):
                    yield value


def read_export_checkpoints(paths: Sequence[Path]) -> list[AuditCheckpoint]:
    found = []
    for record in _records(paths):
        if CHECKPOINT_KEY in record:
            try:
                found.append(checkpoint_from_json(record[CHECKPOINT_KEY]))
            except ValueError as exc:
                raise RequestRejectedError(f"a checkpoint record is malformed: {exc}") from None
    return found


def _exported_hash(record: dict[str, Any]) -> str:
    """The hash of an exported event as written: its JSON without ``hash``, canonical."""
    value = {key: item for key, item in record.items() if key != "hash"}
    return hash_canonical(str(record["prevHash"]), value)[1]


def verify_export(
    paths: Sequence[Path],
    *,
    signature_valid: SignatureCheck,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify export files offline: every event must be covered by a valid checkpoint."""
    verifier = ChainVerifier(
        read_export_checkpoints(paths), signature_valid=signature_valid, max_unsigned=0
    )
    seen = 0
    for record in _records(paths):
        if CHECKPOINT_KEY in record or HEADER_KEY in record or "format" in record:
            continue
        try:
            seq, prev, digest = int(record["seq"]), str(record["prevHash"]), str(record["hash"])
            computed = _exported_hash(record)
        except (KeyError, TypeError, ValueError, CanonicalJSONError):
            seq_field = record.get("seq")
            position = seq_field if isinstance(seq_field, int) else seen + 1
            verifier.add(position, "", "", "unreadable")
            break
        verifier.add(seq, prev, digest, computed)
        seen += 1
        if verifier.failed:
            break
        if progress is not None and seen % PAGE == 0:
            progress(PAGE)
    return verifier.finish()
