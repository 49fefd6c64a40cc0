"""Sinks for per-request audit events: the group-commit writer that makes each event durable
before the request is answered, the best-effort wrapper (``security.audit.required: false``)
and the do-nothing sink (audit disabled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bastion.backends.protocols import Storage
from bastion.core.audit import PreparedEvent, prepare_event
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError, BastionError
from bastion.services.audit.recorder import (
    AuditRecorder,
    RecordingAuditStore,
    RecordingStorage,
    append_prepared_to,
)

log = logging.getLogger("bastion.audit")


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


class BestEffortAuditSink:
    """``security.audit.required: false``: a request proceeds even if its event is lost.

    Each loss is logged (without the event, which may hold personal data) and counted.
    """

    def __init__(self, inner: AuditSink) -> None:
        self._inner = inner
        self.lost = 0

    async def record(self, event: AuditEvent) -> None:
        try:
            await self._inner.record(event)
        except AuditUnavailableError:
            self.lost += 1
            log.error(
                "audit event %s not recorded (security.audit.required is false)", event.action
            )

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()


class BackgroundJob(Protocol):
    """Work that runs beside the sink in its own thread (delivery, retention)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class AuditSinkWithJobs:
    """A sink whose background jobs start and stop with it (the edge's lifespan)."""

    def __init__(self, inner: AuditSink, jobs: Sequence[BackgroundJob]) -> None:
        self._inner = inner
        self.jobs = list(jobs)

    async def record(self, event: AuditEvent) -> None:
        await self._inner.record(event)

    async def start(self) -> None:
        await self._inner.start()
        for job in self.jobs:
            job.start()

    async def stop(self) -> None:
        await self._inner.stop()
        for job in self.jobs:
            await asyncio.to_thread(job.stop)


@dataclass
class _Pending:
    event: PreparedEvent
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitAuditWriter:
    """Batches events from concurrent requests into one transaction per flush.

    ``record`` drops the event if the level or categories say so, masks and encodes it
    (in the caller's task, beside the writer's database work), queues it, then waits until
    its batch has committed, so a caller that answers only after
    ``record`` returns never answers unaudited. A full queue makes callers wait
    (back-pressure) rather than dropping events. While idle, the writer seals the chain with a
    checkpoint when one is due.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        max_batch: int = 5000,
        max_queue: int = 20_000,
    ) -> None:
        self._storage = storage
        self._recorder: AuditRecorder | None = (
            storage.recorder if isinstance(storage, RecordingStorage) else None
        )
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue(self._max_queue)
        self._task = asyncio.create_task(self._run(), name="bastion-audit-writer")
        if self._recorder is not None:
            self._ticker = asyncio.create_task(self._tick(), name="bastion-audit-sealer")

    async def stop(self) -> None:
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        for task in (self._task, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._ticker = None

    async def record(self, event: AuditEvent) -> None:
        if self._queue is None or self._task is None or self._task.done():
            raise AuditUnavailableError("the audit writer is not running")
        recorder = self._recorder
        prepared = (
            prepare_event(event) if recorder is None else recorder.prepare_request_event(event)
        )
        if prepared is None:
            return
        pending = _Pending(prepared)
        await self._queue.put(pending)
        await pending.done

    async def _tick(self) -> None:
        """Seal the chain when a checkpoint is due though no batch comes to do it."""
        assert self._recorder is not None
        # Half the interval: a due checkpoint is never more than that late.
        seconds = max(self._recorder.seal.interval.total_seconds() / 2, 0.05)
        while True:
            await asyncio.sleep(seconds)
            await self._seal_idle()

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

    async def _seal_idle(self) -> None:
        try:
            await asyncio.to_thread(self._seal)
        except Exception as exc:  # the next batch or tick tries again
            log.warning("audit checkpoint not written: %s", type(exc).__name__)

    def _seal(self) -> None:
        with self._storage.transaction() as tx:
            if isinstance(tx.audit, RecordingAuditStore):
                tx.audit.seal_if_due()

    @staticmethod
    def _settle(batch: list[_Pending], error: BaseException | None) -> None:
        for pending in batch:
            if pending.done.done():
                continue
            if error is None:
                pending.done.set_result(None)
            else:
                pending.done.set_exception(error)

    def _write(self, events: list[PreparedEvent]) -> None:
        with self._storage.transaction() as tx:
            append_prepared_to(tx, events)
