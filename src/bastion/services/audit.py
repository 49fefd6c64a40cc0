"""Recording audit events: masked, chained and stored, either inside the caller's transaction
or through a group-commit writer that batches per-request events into few transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.audit import chain_events
from bastion.core.ids import new_id
from bastion.core.masking import mask_value
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError, BastionError

log = logging.getLogger("bastion.audit")


def build_event(
    *,
    action: str,
    outcome: str,
    tenant: str,
    now: datetime,
    actor: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
) -> AuditEvent:
    """A new event with every free-form part masked before it goes anywhere."""
    return AuditEvent(
        event_id=new_id("evt"),
        timestamp=now,
        tenant=tenant,
        action=action,
        outcome=outcome,
        actor=mask_value(actor or {}),
        resource=mask_value(resource or {}),
        details=mask_value(details or {}),
        request=mask_value(request or {}),
    )


def append_events(tx: UnitOfWork, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """Chain ``events`` after the stored head and insert them in the caller's transaction."""
    head_seq, head_hash = tx.audit.lock_head()
    chained = chain_events(head_seq, head_hash, events)
    tx.audit.insert(chained)
    return chained


class AuditSink(Protocol):
    async def record(self, event: AuditEvent) -> None:
        """Return once the event is durable; raise `AuditUnavailableError` if it cannot be."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NullAuditSink:
    """The sink used when ``security.audit.enabled`` is false: accepts and keeps nothing."""

    async def record(self, event: AuditEvent) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class _Pending:
    event: AuditEvent
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitAuditWriter:
    """Batches events from concurrent requests into one transaction per flush.

    ``record`` waits until its event's batch has committed, so a caller that answers only after
    ``record`` returns never answers unaudited. A full queue makes callers wait (back-pressure)
    rather than dropping events.
    """

    def __init__(self, storage: Storage, *, max_batch: int = 500, max_queue: int = 10_000) -> None:
        self._storage = storage
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue(self._max_queue)
        self._task = asyncio.create_task(self._run(), name="bastion-audit-writer")

    async def stop(self) -> None:
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def record(self, event: AuditEvent) -> None:
        if self._queue is None or self._task is None or self._task.done():
            raise AuditUnavailableError("the audit writer is not running")
        pending = _Pending(event)
        await self._queue.put(pending)
        await pending.done

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, [p.event for p in batch])
            except BastionError as exc:
                log.error("audit batch of %d events not written: %s", len(batch), exc.code)
                self._settle(batch, AuditUnavailableError("the audit trail could not be written"))
            except Exception:
                log.exception("audit batch of %d events not written", len(batch))
                self._settle(batch, AuditUnavailableError("the audit trail could not be written"))
            else:
                self._settle(batch, None)
            finally:
                for _ in batch:
                    queue.task_done()

    @staticmethod
    def _settle(batch: list[_Pending], error: BaseException | None) -> None:
        for pending in batch:
            if pending.done.done():
                continue
            if error is None:
                pending.done.set_result(None)
            else:
                pending.done.set_exception(error)

    def _write(self, events: list[AuditEvent]) -> None:
        with self._storage.transaction() as tx:
            append_events(tx, events)
