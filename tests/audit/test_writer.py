"""The group-commit writer: concurrent requests share transactions, each ``record`` returns
only once its event is durable, a store that cannot be written makes ``record`` raise (the
edge answers 503), and ``required: false`` lets requests through with the loss logged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from bastion.config import parse_config
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError, StorageError
from bastion.services.audit import BestEffortAuditSink, GroupCommitAuditWriter, NullAuditSink
from bastion.services.audit.writer import GroupCommitWriter
from bastion.wiring_audit import audit_sink_from

from .conftest import Rig, make_rig


def stored_count(rig: Rig) -> int:
    with rig.storage.transaction() as tx:
        bounds = tx.audit.bounds()
    return 0 if bounds is None else bounds[1] - bounds[0] + 1


def test_concurrent_records_are_all_durable_when_they_return(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        writer = GroupCommitAuditWriter(sqlite_rig.storage, max_batch=50)
        await writer.start()
        await asyncio.gather(*(writer.record(sqlite_rig.event(n)) for n in range(300)))
        assert stored_count(sqlite_rig) == 300
        await writer.stop()

    asyncio.run(scenario())


def test_stop_returns_once_every_queued_event_is_durable(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        writer = GroupCommitAuditWriter(sqlite_rig.storage, max_batch=7)
        await writer.start()
        tasks = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(40)]
        await asyncio.sleep(0)  # every task has queued its event; few batches have run
        await writer.stop()
        assert stored_count(sqlite_rig) == 40
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_others_in_its_batch_durable(sqlite_rig: Rig) -> None:
    async def scenario() -> list[BaseException | None]:
        writer = GroupCommitAuditWriter(sqlite_rig.storage)
        await writer.start()
        tasks = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(30)]
        await asyncio.sleep(0)
        tasks[5].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await writer.stop()
        return results

    results = asyncio.run(scenario())
    assert isinstance(results[5], asyncio.CancelledError)
    assert all(r is None for n, r in enumerate(results) if n != 5)
    assert stored_count(sqlite_rig) >= 29


class BrokenAudit:
    """A storage whose audit inserts fail, as a full disk or a revoked grant would."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.broken = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.rig.storage, name)

    def transaction(self):  # type: ignore[no-untyped-def]
        if self.broken:
            raise StorageError("insert audit events failed (OperationalError)")
        return self.rig.storage.transaction()


def test_record_raises_when_the_trail_cannot_be_written(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        storage = BrokenAudit(sqlite_rig)
        writer = GroupCommitAuditWriter(storage)  # type: ignore[arg-type]
        await writer.start()
        results = await asyncio.gather(
            *(writer.record(sqlite_rig.event(n)) for n in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, AuditUnavailableError) for r in results)
        storage.broken = False
        await writer.record(sqlite_rig.event(99))  # recovers once the store is writable
        await writer.stop()

    asyncio.run(scenario())
    assert stored_count(sqlite_rig) == 1


def test_record_refuses_before_start(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        with pytest.raises(AuditUnavailableError):
            await GroupCommitAuditWriter(sqlite_rig.storage).record(sqlite_rig.event(1))

    asyncio.run(scenario())


def test_best_effort_sink_lets_requests_through(sqlite_rig: Rig) -> None:
    async def scenario() -> int:
        storage = BrokenAudit(sqlite_rig)
        sink = BestEffortAuditSink(GroupCommitAuditWriter(storage))  # type: ignore[arg-type]
        await sink.start()
        for n in range(3):
            await sink.record(sqlite_rig.event(n))
        await sink.stop()
        return sink.lost

    assert asyncio.run(scenario()) == 3


def test_idle_writer_seals_the_chain(sqlite_url: str) -> None:
    rig = make_rig(sqlite_url, every=1000, interval=timedelta(milliseconds=50))
    rig.fill(1)  # the first checkpoint, at seq 1

    async def scenario() -> None:
        writer = GroupCommitAuditWriter(rig.storage)
        await writer.start()
        await writer.record(rig.event(2))
        rig.clock.advance(seconds=1)  # the checkpoint at seq 1 is now stale
        for _ in range(100):  # bounded: the idle tick is every 50 ms
            with rig.storage.transaction() as tx:
                last = tx.audit.last_checkpoint()
            if last is not None and last.seq == 2:
                break
            await asyncio.sleep(0.05)
        await writer.stop()

    asyncio.run(scenario())
    with rig.storage.transaction() as tx:
        last = tx.audit.last_checkpoint()
    assert last is not None and last.seq == 2


def last_sealed(rig: Rig) -> int | None:
    with rig.storage.transaction() as tx:
        last = tx.audit.last_checkpoint()
    return None if last is None else last.seq


def test_writer_seals_at_start_a_tail_a_crash_left_unsealed(sqlite_url: str) -> None:
    """Events 2-4 were stored but not yet due a checkpoint when bastion was killed: the next
    start seals them before any request, so `verify` never sees them wait past the interval."""
    rig = make_rig(sqlite_url, every=1000, interval=timedelta(hours=1))
    rig.fill(4)  # sealed at 1 only
    assert last_sealed(rig) == 1

    async def scenario() -> int | None:
        writer = GroupCommitAuditWriter(rig.storage)
        await writer.start()
        sealed = last_sealed(rig)
        await writer.stop()
        return sealed

    assert asyncio.run(scenario()) == 4


def test_writer_seals_its_last_batches_when_it_stops(sqlite_url: str) -> None:
    """A graceful stop leaves no unsealed tail behind it, however soon after a checkpoint."""
    rig = make_rig(sqlite_url, every=1000, interval=timedelta(hours=1))
    rig.fill(1)

    async def scenario() -> None:
        writer = GroupCommitAuditWriter(rig.storage)
        await writer.start()
        await asyncio.gather(*(writer.record(rig.event(n)) for n in range(5)))
        assert last_sealed(rig) == 1  # not due yet
        await writer.stop()

    asyncio.run(scenario())
    assert last_sealed(rig) == stored_count(rig) == 6


def test_with_request_events_off_each_recorded_change_is_sealed(sqlite_url: str) -> None:
    """``security.audit.enabled: false`` runs no writer, so no idle sealer: the changes still
    recorded (here a second one within the interval) are sealed as they commit."""
    config = parse_config(
        f"storage:\n  url: {sqlite_url}\nsecurity:\n  pepper: {'w' * 40}\n"
        "  audit:\n    enabled: false\n",
        source="test",
    )
    rig = make_rig(sqlite_url, every=1000, interval=timedelta(hours=1))
    assert isinstance(audit_sink_from(config, storage=rig.storage, clock=rig.clock), NullAuditSink)
    rig.fill(2)
    assert last_sealed(rig) == 2


class GatedWriter(GroupCommitWriter[int]):
    """The writer's mechanics with batches the test completes by hand, in any order it likes."""

    def __init__(self, **options: int) -> None:
        super().__init__(**options)
        self.started: list[tuple[list[int], asyncio.Future[Sequence[int]]]] = []

    def prepare(self, event: AuditEvent) -> int:
        return int(event.details["n"])

    def write(self, items: list[int]) -> Sequence[int]:
        raise AssertionError("batches go through _begin_write")

    def _begin_write(self, items: list[int]) -> asyncio.Future[Sequence[int]]:
        gate: asyncio.Future[Sequence[int]] = asyncio.get_running_loop().create_future()
        self.started.append((items, gate))
        return gate


def test_a_split_writer_keeps_two_batches_under_way_and_no_more(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        writer = GatedWriter(max_in_flight=2, split_at=10)
        await writer.start()
        tasks = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(35)]
        await asyncio.sleep(0)
        # Split as soon as 10 were queued, twice; the other 15 wait for a free slot.
        assert [items for items, _ in writer.started] == [list(range(10)), list(range(10, 20))]
        writer.started[0][1].set_result(())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert all(task.done() for task in tasks[:10])
        assert not any(task.done() for task in tasks[10:])
        assert [items for items, _ in writer.started[2:]] == [list(range(20, 35))]
        for _, gate in writer.started[1:]:
            gate.set_result(())
        await asyncio.gather(*tasks)
        await writer.stop()

    asyncio.run(scenario())


def test_a_failed_batch_fails_only_its_own_callers_when_two_are_under_way(
    sqlite_rig: Rig,
) -> None:
    async def scenario() -> list[BaseException | None]:
        writer = GatedWriter(max_in_flight=2, split_at=5)
        await writer.start()
        tasks = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(10)]
        await asyncio.sleep(0)
        (_, first), (_, second) = writer.started
        second.set_result(())
        first.set_exception(StorageError("disk full"))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await writer.stop()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(r, AuditUnavailableError) for r in results[:5])
    assert results[5:] == [None] * 5


def test_a_batch_smaller_than_a_split_waits_for_the_one_under_way(sqlite_rig: Rig) -> None:
    async def scenario() -> None:
        writer = GatedWriter(max_in_flight=2, split_at=10)
        await writer.start()
        first = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(3)]
        await asyncio.sleep(0)
        later = [asyncio.create_task(writer.record(sqlite_rig.event(n))) for n in range(3, 7)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # A gateway's trickle: one commit at a time, the next batch gathering meanwhile.
        assert [items for items, _ in writer.started] == [[0, 1, 2]]
        writer.started[0][1].set_result(())
        await asyncio.gather(*first)
        await asyncio.sleep(0)
        assert [items for items, _ in writer.started[1:]] == [[3, 4, 5, 6]]
        writer.started[1][1].set_result(())
        await asyncio.gather(*later)
        await writer.stop()

    asyncio.run(scenario())


def test_a_batch_that_cannot_even_start_fails_its_callers_and_the_next_one_runs(
    sqlite_rig: Rig,
) -> None:
    class Unstartable(GatedWriter):
        def _begin_write(self, items: list[int]) -> asyncio.Future[Sequence[int]]:
            if 0 in items:
                raise TypeError("cannot pickle 'generator' object")
            return super()._begin_write(items)

    async def scenario() -> None:
        writer = Unstartable()
        await writer.start()
        with pytest.raises(AuditUnavailableError):
            await writer.record(sqlite_rig.event(0))
        later = asyncio.create_task(writer.record(sqlite_rig.event(1)))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        writer.started[0][1].set_result(())
        await later
        await writer.stop()

    asyncio.run(scenario())
