"""The recording storage: checkpoints every N events or T seconds in the same transaction,
destinations see events only once committed, levels and categories, monotonic time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.audit_policy import AuditPolicy
from bastion.core.model import AuditEvent
from bastion.services.audit import (
    AuditRecorder,
    RecordingStorage,
    SealPolicy,
    append_events,
    build_event,
)

from .conftest import T0, FrozenClock, Rig, make_rig


class RecordingOutbox:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.checkpoints: list[AuditCheckpoint] = []

    def publish(self, events: Sequence[AuditEvent], checkpoints: Sequence[AuditCheckpoint]) -> None:
        self.events += events
        self.checkpoints += checkpoints


def checkpoint_seqs(rig: object) -> list[int]:
    with rig.storage.transaction() as tx:  # type: ignore[attr-defined]
        return [c.seq for c in tx.audit.checkpoints()]


def test_checkpoint_every_n_events(storage_url: str) -> None:
    rig = make_rig(storage_url, every=5)
    rig.fill(12)
    rig.fill(7, per_tx=7)
    assert checkpoint_seqs(rig) == [1, 5, 10, 19]


def test_checkpoint_after_t_seconds(storage_url: str) -> None:
    rig = make_rig(storage_url, every=1000, interval=timedelta(seconds=30))
    rig.fill(3)
    rig.clock.advance(seconds=29)
    rig.fill(1)
    rig.clock.advance(seconds=2)
    rig.fill(1)
    assert checkpoint_seqs(rig) == [1, 5]


def test_checkpoints_verify_with_the_public_key(storage_url: str) -> None:
    rig = make_rig(storage_url, every=2)
    rig.fill(6)
    verifier = rig.signer.verifier()
    with rig.storage.transaction() as tx:
        checkpoints = tx.audit.checkpoints()
        heads = {e.seq: e.hash for e in tx.audit.iterate()}
    assert checkpoints and all(verifier.valid(c) for c in checkpoints)
    assert all(heads[c.seq] == c.head_hash for c in checkpoints)


def test_destinations_see_events_only_after_commit() -> None:
    outbox = RecordingOutbox()
    rig = make_rig("memory://", outbox=outbox, every=2)
    with pytest.raises(RuntimeError), rig.storage.transaction() as tx:
        append_events(tx, [rig.event(1), rig.event(2)])
        assert outbox.events == []
        raise RuntimeError("the change fails")
    assert outbox.events == [] and outbox.checkpoints == []
    stored = rig.append(rig.event(3), rig.event(4))
    assert outbox.events == stored and [c.seq for c in outbox.checkpoints] == [2]


def test_time_never_goes_backwards_along_the_chain() -> None:
    clock = FrozenClock()
    rig = make_rig("memory://", clock=clock)
    late = build_event(action="a.b", outcome="success", tenant="t", now=T0 + timedelta(seconds=9))
    early = build_event(action="a.b", outcome="success", tenant="t", now=T0)
    first, second = rig.append(late, early)
    assert second.timestamp == first.timestamp == T0 + timedelta(seconds=9)


@pytest.mark.parametrize(
    ("level", "recorded"),
    [
        ("minimal", ["auth.login/failure", "authz.deny/denied", "auth.login/success"]),
        (
            "standard",
            [
                "pattern.read/success",
                "auth.login/failure",
                "authz.deny/denied",
                "auth.login/success",
            ],
        ),
    ],
)
def test_levels_choose_which_request_events_are_recorded(level: str, recorded: list[str]) -> None:
    policy = AuditPolicy.of(
        ["authentication", "authorization", "patterns"],
        level,  # type: ignore[arg-type]
    )
    rig = make_rig("memory://", policy=policy)
    events = [
        ("pattern.read", "success", 200),
        ("auth.login", "failure", 401),
        ("authz.deny", "denied", 403),
        ("auth.login", "success", 200),
        ("agent.register", "success", 200),  # category agents: not selected
    ]
    kept = []
    for action, outcome, status in events:
        event = build_event(
            action=action,
            outcome=outcome,
            tenant="t",
            now=T0,
            actor={"id": "alice", "userAgent": "curl/8"},
            details={"status": status, "reasons": ["role viewer grants it"]},
        )
        prepared = rig.recorder.prepare_request_event(event)
        if prepared is not None:
            kept.append(prepared)
    assert [f"{p.source.action}/{p.source.outcome}" for p in kept] == recorded
    if level == "minimal":
        assert all("userAgent" not in p.actor for p in kept)
    else:
        allowed = kept[0]
        assert "reasons" not in allowed.details and "reasons" in kept[2].details


def count_checkpoint_reads(rig: Rig) -> list[int]:
    """From now on, one entry per read of the stored last checkpoint through ``rig.raw``."""
    reads: list[int] = []
    original = type(rig.raw).transaction

    def counting_transaction(self: object) -> object:
        return _CountingTx(original(self))

    class _CountingTx:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def __enter__(self) -> object:
            tx = self._inner.__enter__()  # type: ignore[attr-defined]
            last = tx.audit.last_checkpoint

            def counted() -> AuditCheckpoint | None:
                reads.append(1)
                return last()  # type: ignore[no-any-return]

            tx.audit.last_checkpoint = counted
            return tx

        def __exit__(self, *exc: object) -> object:
            return self._inner.__exit__(*exc)  # type: ignore[attr-defined]

    rig.raw.transaction = counting_transaction.__get__(rig.raw)  # type: ignore[method-assign]
    return reads


def test_a_committed_checkpoint_spares_the_read_until_the_next_is_due(storage_url: str) -> None:
    """Per batch, the last checkpoint is read only when the one this process committed says a
    new one may be due; the seals land exactly where reading every time puts them."""
    rig = make_rig(storage_url, every=5)
    reads = count_checkpoint_reads(rig)
    rig.fill(12)
    assert checkpoint_seqs(rig) == [1, 5, 10]
    # Read at 1 (no checkpoint yet), at 5 and at 10 (the committed one says "maybe due");
    # the other nine batches are spared.
    assert len(reads) == 3


def fill_as_another_writer(rig: Rig, count: int) -> None:
    """``count`` events through a recorder of their own over the same database, as the writer
    process or another replica appends them."""
    sealer = RecordingStorage(
        rig.raw, AuditRecorder(signer=rig.signer, clock=rig.clock, seal=SealPolicy(every=5))
    )
    for n in range(count):
        with sealer.transaction() as tx:
            append_events(tx, [rig.event(n)])


def test_a_checkpoint_another_writer_sealed_is_read_once(storage_url: str) -> None:
    """A process that only reads the checkpoints another writer seals knows each one once its
    unit of work commits, instead of reading it for every append."""
    rig = make_rig(storage_url, every=5)
    fill_as_another_writer(rig, 10)
    assert checkpoint_seqs(rig) == [1, 5, 10]
    reads = count_checkpoint_reads(rig)
    rig.fill(4)  # seq 11 to 14: read at 11 only
    assert len(reads) == 1
    rig.fill(1)  # seq 15: the remembered checkpoint says "maybe due", the read confirms
    assert checkpoint_seqs(rig) == [1, 5, 10, 15] and len(reads) == 2


def test_a_checkpoint_read_in_a_rolled_back_unit_is_not_remembered(storage_url: str) -> None:
    rig = make_rig(storage_url, every=5)
    fill_as_another_writer(rig, 1)
    reads = count_checkpoint_reads(rig)
    with pytest.raises(RuntimeError), rig.storage.transaction() as tx:
        append_events(tx, [rig.event(1)])  # reads checkpoint 1...
        raise RuntimeError("...and rolls back")
    rig.fill(1)  # ...so this append reads it again
    assert len(reads) == 2


def test_a_rolled_back_checkpoint_is_not_remembered(storage_url: str) -> None:
    rig = make_rig(storage_url, every=5)
    rig.fill(4)
    with pytest.raises(RuntimeError), rig.storage.transaction() as tx:
        append_events(tx, [rig.event(4)])  # seq 5: a checkpoint is sealed here...
        raise RuntimeError("...and rolled back with the event")
    rig.fill(1)  # seq 5 again: due, since the rolled-back checkpoint never existed
    assert checkpoint_seqs(rig) == [1, 5]
