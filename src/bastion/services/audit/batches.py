"""Storing one batch of per-request audit events, for the writer thread and the writer
process alike: one transaction, and when the database refuses it, one event at a time."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bastion.backends.protocols import Storage
from bastion.core.audit import PreparedEvent
from bastion.errors import AuditUnavailableError, BastionError
from bastion.services.audit.recorder import append_prepared_to

log = logging.getLogger("bastion.audit")
UNWRITTEN = "the audit trail could not be written"
GIVE_UP_AFTER = 3  # events of a failed batch refused in a row before the rest are given up


def store_batch(storage: Storage, items: Sequence[PreparedEvent]) -> list[int]:
    """Chain and store ``items`` in one transaction; answer the positions of those not stored.

    When the batch fails, a transaction that takes the chain's lock and stores nothing tells
    whether the database or an event is at fault. If that fails too, so does the batch: the
    error is raised and every caller refused. If it commits, the events are stored again one
    a transaction, so an event the database will not take (none that bastion knows of: names,
    NUL and long index values are made storable before they get here) fails only its own
    request, not every request it was batched with. After `GIVE_UP_AFTER` failures in a row
    the rest are refused untried: the database refuses every event (a full disk), so a large
    batch does not cost one failed transaction an event. A batch whose commit did happen but
    whose answer was lost is not stored twice: each event's id is unique, so its retry fails.
    """
    try:
        _store(storage, items)
        return []
    except Exception as exc:
        if len(items) == 1 or not _reachable(storage):
            raise
        log.error(
            "audit batch of %d events not written (%s); storing them one at a time",
            len(items),
            error_code(exc),
        )
    refused: list[int] = []
    in_a_row = 0
    for position, item in enumerate(items):
        if in_a_row == GIVE_UP_AFTER:
            refused.extend(range(position, len(items)))
            break
        try:
            _store(storage, [item])
        except Exception as exc:
            log.error("audit event %s not written: %s", item.source.action, error_code(exc))
            refused.append(position)
            in_a_row += 1
        else:
            in_a_row = 0
    if len(refused) == len(items):
        raise AuditUnavailableError(UNWRITTEN)
    return refused


def _store(storage: Storage, items: Sequence[PreparedEvent]) -> None:
    with storage.transaction() as tx:
        append_prepared_to(tx, items)


def _reachable(storage: Storage) -> bool:
    """Whether a transaction that takes the audit chain's lock commits."""
    try:
        with storage.transaction() as tx:
            tx.audit.lock_head()
    except Exception:
        return False
    return True


def error_code(exc: BaseException) -> str:
    """What a log line says of a failure: bastion's error code, else the exception's class."""
    return exc.code if isinstance(exc, BastionError) else type(exc).__name__
