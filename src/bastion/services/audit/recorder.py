"""The one gate every audit event passes on its way to storage: policy, masking, the chain,
signed checkpoints, and the hand-over to destinations after commit.

`RecordingStorage` wraps the wired `Storage` so that every unit of work's ``audit`` store is
a `RecordingAuditStore`: whichever service appends events (`append_events`), they are masked
with the configured rules, chained, sealed by a checkpoint when one is due (every N events or
T seconds, in the same transaction), and published to the `Outbox` only once committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from bastion.backends.protocols import AuditStore, ChangeCounters, Storage, UnitOfWork
from bastion.core.audit import PreparedEvent, chain_prepared, prepare_event
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.audit_policy import ALL, AuditPolicy
from bastion.core.masking import FieldMasker
from bastion.core.model import AuditEvent
from bastion.errors import ConflictError
from bastion.services.clock import Clock

log = logging.getLogger("bastion.audit")


class CheckpointSigning(Protocol):
    key_id: str

    def sign(self, seq: int, head_hash: str, *, now: datetime) -> AuditCheckpoint: ...


class Outbox(Protocol):
    def publish(self, events: Sequence[AuditEvent], checkpoints: Sequence[AuditCheckpoint]) -> None:
        """Hand committed events on to the destinations; never blocks long, never raises."""


class NullOutbox:
    def publish(self, events: Sequence[AuditEvent], checkpoints: Sequence[AuditCheckpoint]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class SealPolicy:
    """A checkpoint is due every ``every`` events (at the batch that crosses a multiple) or
    ``interval`` after the last one, whichever comes first; with ``each_commit``, at every
    commit that appends (a process that runs no sealer after it: see `seal_each_commit`)."""

    every: int = 1000
    interval: timedelta = timedelta(seconds=60)
    each_commit: bool = False


@dataclass
class AuditRecorder:
    signer: CheckpointSigning
    clock: Clock
    policy: AuditPolicy = ALL
    fields: FieldMasker | None = None
    seal: SealPolicy = field(default_factory=SealPolicy)
    outbox: Outbox = field(default_factory=NullOutbox)
    # The newest checkpoint this process knows to be committed: one it sealed, or one it read
    # in a unit of work that then committed. Stored checkpoints only get newer, and "due" only
    # becomes true as the head moves away from the last one, so while this one says "not due"
    # the stored one does too; only a "due" is confirmed by a read.
    _known: AuditCheckpoint | None = field(default=None, init=False, repr=False)

    def prepare_request_event(self, event: AuditEvent) -> PreparedEvent | None:
        """A request's event masked and trimmed as the level and categories say, or None
        when it is not to be recorded."""
        trim = self.policy.admit(event)
        return None if trim is None else prepare_event(event, self.fields, trim=trim)

    def due(self, store: AuditStore, head_seq: int) -> bool:
        """A checkpoint is due at ``head_seq`` when the chain has none yet, has crossed a
        multiple of ``every`` since the last one, or the last one is ``interval`` old.

        So after any commit fewer than ``every`` events are unsealed, which is what
        verification allows.
        """
        known = self._known
        if known is not None and not self._due_after(known, head_seq):
            return False
        last = store.last_checkpoint()
        if last is None:
            return head_seq > 0
        return self._due_after(last, head_seq)

    def _due_after(self, last: AuditCheckpoint, head_seq: int) -> bool:
        if head_seq <= last.seq:
            return False
        if self.seal.each_commit:
            return True
        every = self.seal.every
        if head_seq // every > last.seq // every:
            return True
        return self.clock.now() - last.timestamp >= self.seal.interval

    def committed(self, checkpoint: AuditCheckpoint) -> None:
        """``checkpoint`` is durable (called after the transaction that sealed or read it
        committed)."""
        known = self._known
        if known is None or checkpoint.seq > known.seq:
            self._known = checkpoint

    def sign(self, store: AuditStore, head_seq: int, head_hash: str) -> AuditCheckpoint | None:
        """Store a checkpoint at the head; None if another writer made one there first."""
        checkpoint = self.signer.sign(head_seq, head_hash, now=self.clock.now())
        try:
            store.insert_checkpoint(checkpoint)
        except ConflictError:
            return None
        return checkpoint


class RecordingAuditStore:
    """An `AuditStore` that appends through an `AuditRecorder` and remembers what it wrote."""

    def __init__(self, inner: AuditStore, recorder: AuditRecorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.appended: list[AuditEvent] = []
        self.sealed: list[AuditCheckpoint] = []
        self.seen: list[AuditCheckpoint] = []
        self.lock_head = inner.lock_head
        self.head = inner.head
        self.head_timestamp = inner.head_timestamp
        self.insert = inner.insert
        self.query = inner.query
        self.iterate = inner.iterate
        self.iterate_indexed = inner.iterate_indexed
        self.bounds = inner.bounds
        self.insert_checkpoint = inner.insert_checkpoint
        self.checkpoints = inner.checkpoints
        self.delete_through = inner.delete_through

    def last_checkpoint(self) -> AuditCheckpoint | None:
        """The newest stored checkpoint, remembered: once this unit of work commits, the
        recorder knows it too and need not read it again for every append."""
        last = self.inner.last_checkpoint()
        if last is not None:
            self.seen.append(last)
        return last

    def append(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """Mask, chain and insert; seal with a checkpoint when one is due."""
        fields = self.recorder.fields
        return self.append_prepared([prepare_event(event, fields) for event in events])

    def append_prepared(self, prepared: Sequence[PreparedEvent]) -> list[AuditEvent]:
        """Chain and insert events already masked (`bastion.core.audit.prepare_event`)."""
        if not prepared:
            return []
        head_seq, head_hash = self.inner.lock_head()
        not_before = self.inner.head_timestamp()
        chained = chain_prepared(head_seq, head_hash, prepared, not_before=not_before)
        stored = [event for event, _ in chained]
        self.inner.insert(stored, bodies=[text for _, text in chained])
        self.appended.extend(stored)
        last = stored[-1]
        if self.recorder.due(self, last.seq):
            self._seal(last.seq, last.hash)
        return stored

    def seal_if_due(self) -> AuditCheckpoint | None:
        """A checkpoint at the current head when one is due (the idle timer's call)."""
        head_seq, head_hash = self.inner.lock_head()
        if not self.recorder.due(self, head_seq):
            return None
        return self._seal(head_seq, head_hash)

    def seal_now(self) -> AuditCheckpoint | None:
        """A checkpoint at the current head unless one is already there."""
        head_seq, head_hash = self.inner.lock_head()
        last = self.last_checkpoint()
        if head_seq == 0 or (last is not None and last.seq >= head_seq):
            return None
        return self._seal(head_seq, head_hash)

    def _seal(self, seq: int, digest: str) -> AuditCheckpoint | None:
        checkpoint = self.recorder.sign(self.inner, seq, digest)
        if checkpoint is not None:
            self.sealed.append(checkpoint)
        return checkpoint


def append_to(tx: UnitOfWork, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """Append through the recorder when ``tx`` has one, else mask, chain and insert plainly."""
    store = tx.audit
    if isinstance(store, RecordingAuditStore):
        return store.append(events)
    return append_prepared_to(tx, [prepare_event(event) for event in events])


def append_prepared_to(tx: UnitOfWork, prepared: Sequence[PreparedEvent]) -> list[AuditEvent]:
    store = tx.audit
    if isinstance(store, RecordingAuditStore):
        return store.append_prepared(prepared)
    head_seq, head_hash = store.lock_head()
    chained = chain_prepared(head_seq, head_hash, prepared, not_before=store.head_timestamp())
    stored = [event for event, _ in chained]
    store.insert(stored, bodies=[text for _, text in chained])
    return stored


class RecordingStorage:
    """`Storage` whose units of work record audit events through ``recorder``."""

    def __init__(self, inner: Storage, recorder: AuditRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        with self.inner.transaction() as tx:
            journal = RecordingAuditStore(tx.audit, self.recorder)
            # The backend's unit of work lives for this block only: swapping its audit store
            # routes every service's appends through the recorder.
            tx.audit = journal
            yield tx
        for checkpoint in (*journal.seen, *journal.sealed):
            self.recorder.committed(checkpoint)
        if journal.appended or journal.sealed:
            # Committed: only now may the events leave for the destinations.
            try:
                self.recorder.outbox.publish(journal.appended, journal.sealed)
            except Exception:
                log.exception("audit events committed but not handed to the destinations")

    def read_only(self) -> AbstractContextManager[UnitOfWork]:
        return self.inner.read_only()  # reads record nothing

    def migrate(self) -> None:
        self.inner.migrate()

    def check(self) -> None:
        self.inner.check()

    def change_counters(self) -> ChangeCounters | None:
        return self.inner.change_counters()

    def close(self) -> None:
        self.inner.close()


def seal_each_commit(storage: Storage) -> None:
    """Make ``storage``'s recorder seal every commit that appends: for a one-shot command,
    after which no sealer runs. Verification refuses events left unsealed longer than a
    running bastion leaves them, and nothing would seal these later (a signature costs about
    a tenth of a millisecond)."""
    if isinstance(storage, RecordingStorage):
        recorder = storage.recorder
        recorder.seal = replace(recorder.seal, each_commit=True)
