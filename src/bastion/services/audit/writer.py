"""Sinks for per-request audit events: the group-commit writer that makes each event durable
before the request is answered, the best-effort wrapper (``security.audit.required: false``)
and the do-nothing sink (audit disabled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from bastion.backends.protocols import Storage
from bastion.core.audit import PreparedEvent, prepare_event
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError, BastionError
from bastion.services.audit.batches import UNWRITTEN, store_batch
from bastion.services.audit.recorder import (
    AuditRecorder,
    RecordingAuditStore,
    RecordingStorage,
)

log = logging.getLogger("bastion.audit")
T = TypeVar("T")


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


class GroupCommitWriter(ABC, Generic[T]):
    """Group commit: events from concurrent callers share one durable transaction a batch.

    ``record`` turns the event into what is stored (`prepare`, in the caller's task), queues
    it, then waits until its batch has committed, so a caller that answers only after
    ``record`` returns never answers unaudited.

    Batches are written in order, by default one at a time in a worker thread (`write`),
    while the event loop keeps preparing and queueing the next callers' events (both drivers
    release the GIL while the database works). The next batch starts on the loop's next turn
    after the previous one committed, or after the first event when idle, with every event
    queued by then: one turn of latency buys batches as large as the load, so commits (an
    fsync each) stay few. A full queue makes callers wait (back-pressure) rather than
    dropping events.

    A batch is one transaction, but not one fate: `write` may store all of it but some events
    (`bastion.services.audit.batches.store_batch`), and then only those events' callers are
    refused.

    A writer whose batches are stored outside this interpreter (another process) may split:
    as soon as ``split_at`` events are queued they leave as a batch, without waiting for the
    loop's turn to end, even while another batch is under way (up to ``max_in_flight``).
    Callers wait for their own batch, so a burst of callers would otherwise alternate
    between preparing (this process busy, the writer idle) and writing (the reverse); split,
    the two overlap. Smaller batches still wait for the one under way, as they would
    without splitting: each batch costs a commit, and at a gateway's rates batches are small.
    """

    def __init__(
        self,
        *,
        max_batch: int = 5000,
        max_queue: int = 20_000,
        max_in_flight: int = 1,
        split_at: int | None = None,
    ) -> None:
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._max_in_flight = max_in_flight
        self._split_at = split_at
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._in_flight = 0
        self._room: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._running = False
        self._flush_due = False

    @abstractmethod
    def prepare(self, event: AuditEvent) -> T | None:
        """What is queued for ``event``, or None when it is not to be recorded."""

    @abstractmethod
    def write(self, items: list[T]) -> Sequence[int]:
        """Store one batch durably (runs in a worker thread); answer the positions in
        ``items`` of the events it could not store (each other one is durable), or raise
        when it stored none."""

    async def start(self) -> None:
        self._room, self._idle = asyncio.Event(), asyncio.Event()
        self._room.set()
        self._idle.set()
        self._running = True

    async def stop(self) -> None:
        if not self._running or self._idle is None:
            return
        self._running = False
        await self._idle.wait()  # every queued event written (or failed)

    async def record(self, event: AuditEvent) -> None:
        if not self._running or self._room is None or self._idle is None:
            raise AuditUnavailableError("the audit writer is not running")
        item = self.prepare(event)
        if item is None:
            return
        while len(self._queued) >= self._max_queue:
            self._room.clear()
            await self._room.wait()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        self._idle.clear()
        if self._split_due():
            self._flush()
        elif self._in_flight == 0:
            self._flush_soon()
        await done

    def _split_due(self) -> bool:
        return (
            self._split_at is not None
            and len(self._queued) >= self._split_at
            and self._in_flight < self._max_in_flight
        )

    def _flush_soon(self) -> None:
        """Start a batch once the tasks already ready to run have queued their events."""
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush_if_idle)

    def _flush_if_idle(self) -> None:
        self._flush_due = False
        if self._queued and (self._in_flight == 0 or self._split_due()):
            self._flush()

    def _flush(self) -> None:
        """Hand the queued events (up to ``max_batch``) to the writer."""
        assert self._idle is not None and self._room is not None
        batch = self._queued[: self._max_batch]
        del self._queued[: self._max_batch]
        if len(self._queued) < self._max_queue:
            self._room.set()
        writing: asyncio.Future[Sequence[int]]
        try:
            writing = self._begin_write([item for item, _ in batch])
        except Exception as exc:  # its callers are refused, not left waiting
            writing = asyncio.get_running_loop().create_future()
            writing.set_exception(exc)
        self._in_flight += 1
        writing.add_done_callback(lambda finished: self._written(batch, finished))

    def _begin_write(self, items: list[T]) -> asyncio.Future[Sequence[int]]:
        """Start storing one batch; the future completes once it is durable (or failed), with
        what `write` answers. Batches must be stored in the order they start."""
        return asyncio.get_running_loop().run_in_executor(None, self.write, items)

    def _written(
        self,
        batch: list[tuple[T, asyncio.Future[None]]],
        finished: asyncio.Future[Sequence[int]],
    ) -> None:
        assert self._idle is not None
        self._in_flight -= 1
        error = _failure(finished, len(batch))
        refused = frozenset(() if error is not None else finished.result())
        for position, (_, done) in enumerate(batch):
            if done.done():  # the caller was cancelled
                continue
            if error is not None:
                done.set_exception(error)
            elif position in refused:
                done.set_exception(AuditUnavailableError(UNWRITTEN))
            else:
                done.set_result(None)
        if self._queued:
            # Not at once: the callers just answered may be about to queue their next events.
            self._flush_soon()
        elif self._in_flight == 0:
            self._idle.set()


class GroupCommitAuditWriter(GroupCommitWriter[PreparedEvent]):
    """The per-request sink of `bastion serve`: events levelled and masked by the recorder
    in the request's task, chained and stored a batch per transaction. While idle, the
    writer seals the chain with a checkpoint when one is due; it seals the head when it
    starts (events a crash left unsealed) and when it stops, after the last batch, so that
    no tail outlives a running bastion unsealed (verification refuses one that has)."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_batch: int = 5000,
        max_queue: int = 20_000,
        max_in_flight: int = 1,
        split_at: int | None = None,
    ) -> None:
        super().__init__(
            max_batch=max_batch,
            max_queue=max_queue,
            max_in_flight=max_in_flight,
            split_at=split_at,
        )
        self._storage = storage
        self._recorder: AuditRecorder | None = (
            storage.recorder if isinstance(storage, RecordingStorage) else None
        )
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        if self._recorder is not None:
            await self._seal_idle(now=True)
            self._ticker = asyncio.create_task(self._tick(), name="bastion-audit-sealer")

    async def stop(self) -> None:
        await super().stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
            await self._seal_idle(now=True)

    def prepare(self, event: AuditEvent) -> PreparedEvent | None:
        recorder = self._recorder
        return prepare_event(event) if recorder is None else recorder.prepare_request_event(event)

    def write(self, items: list[PreparedEvent]) -> Sequence[int]:
        return store_batch(self._storage, items)

    async def _tick(self) -> None:
        """Seal the chain when a checkpoint is due though no batch comes to do it."""
        assert self._recorder is not None
        # Half the interval: a due checkpoint is never more than that late.
        seconds = max(self._recorder.seal.interval.total_seconds() / 2, 0.05)
        while True:
            await asyncio.sleep(seconds)
            await self._seal_idle()

    async def _seal_idle(self, *, now: bool = False) -> None:
        """A checkpoint at the head when one is due (``now``: unless the head has one)."""
        try:
            await asyncio.to_thread(self._seal, now)
        except Exception as exc:  # the next batch or tick tries again
            log.warning("audit checkpoint not written: %s", type(exc).__name__)

    def _seal(self, now: bool) -> None:
        with self._storage.transaction() as tx:
            if isinstance(tx.audit, RecordingAuditStore):
                if now:
                    tx.audit.seal_now()
                else:
                    tx.audit.seal_if_due()


def _failure(finished: asyncio.Future[Sequence[int]], size: int) -> AuditUnavailableError | None:
    """None when the batch committed, else the error its callers get (the cause is logged)."""
    if finished.cancelled():
        log.error("audit batch of %d events not written: cancelled", size)
    else:
        exc = finished.exception()
        if exc is None:
            return None
        if isinstance(exc, BastionError):
            log.error("audit batch of %d events not written: %s", size, exc.code)
        else:
            log.error("audit batch of %d events not written", size, exc_info=exc)
    return AuditUnavailableError(UNWRITTEN)
