"""The two sides of the append benchmark: plain inserts of the events, and bastion's path."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from bastion.backends.protocols import Storage
from bastion.core.audit import format_timestamp
from bastion.core.jcs import fast_text
from bastion.core.model import AuditEvent
from bastion.services.audit import RecordingStorage
from bastion.services.audit.recorder import append_prepared_to


def plain_row_body(event: AuditEvent) -> str:
    """The same body bastion stores (the event's JSON), encoded plainly: no masking, no
    canonical-form checks; ``seq`` and the hash fields are already set."""
    return fast_text(
        {
            "action": event.action,
            "actor": event.actor,
            "details": event.details,
            "eventId": event.event_id,
            "outcome": event.outcome,
            "prevHash": event.prev_hash,
            "request": event.request,
            "resource": event.resource,
            "seq": event.seq,
            "tenant": event.tenant,
            "timestamp": format_timestamp(event.timestamp),
        }
    )


def plain_round(storage: Storage, events: list[AuditEvent], batch: int) -> None:
    """Plain inserts of the same rows: numbered events, the same JSON body and columns, the
    same driver path and one durable commit a batch; no masking, no chain, no signing."""
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        bodies = [plain_row_body(event) for event in chunk]
        with storage.transaction() as tx:
            tx.audit.insert(chunk, bodies=bodies)


def recorded_round(storage: RecordingStorage, events: list[AuditEvent], batch: int) -> None:
    """bastion: level + masking + RFC 8785 encoding, then chain, insert and seal per batch."""
    recorder = storage.recorder
    for start in range(0, len(events), batch):
        prepared = [recorder.prepare_request_event(e) for e in events[start : start + batch]]
        with storage.transaction() as tx:
            append_prepared_to(tx, [p for p in prepared if p is not None])


@dataclass
class _Pending:
    event: AuditEvent
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PlainGroupWriter:
    """The group-commit writer's mechanics (queue, futures, a thread per batch) with plain
    inserts: the baseline for `GroupCommitAuditWriter`."""

    def __init__(self, storage: Storage, *, max_batch: int = 5000) -> None:
        self._storage = storage
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(20_000)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await self._queue.join()
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def record(self, event: AuditEvent) -> None:
        pending = _Pending(event)
        await self._queue.put(pending)
        await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await asyncio.to_thread(
                plain_round, self._storage, [p.event for p in batch], len(batch)
            )
            for pending in batch:
                pending.done.set_result(None)
                self._queue.task_done()
