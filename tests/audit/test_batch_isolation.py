"""An event the database refuses fails only its own request, not every request its batch
shared a transaction with; a database that refuses every event fails the batch after a few
tries, not one failed transaction an event. The refusal is the database's own (a trigger), on
SQLite and PostgreSQL, through the writer thread and the writer process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import pytest

from bastion.backends.protocols import UnitOfWork
from bastion.errors import AuditUnavailableError
from bastion.services.audit import GroupCommitAuditWriter
from bastion.services.audit.batches import GIVE_UP_AFTER
from bastion.services.audit.verify import verify_storage

from .conftest import Rig, make_rig
from .refusals import refused_by_the_database
from .test_process_writer import World, event

POISON = "poison.event"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "clean_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def sql_rig(sql_url: str) -> Iterator[Rig]:
    built = make_rig(sql_url)
    yield built
    built.storage.close()


class CountingStorage:
    """The rig's storage, counting the transactions begun through it."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.transactions = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.rig.storage, name)

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        self.transactions += 1
        return self.rig.storage.transaction()


def record_all(
    writer: GroupCommitAuditWriter, rig: Rig, actions: list[str]
) -> list[BaseException | None]:
    """Record one event an action, all queued before the first batch starts (one batch)."""

    async def scenario() -> list[BaseException | None]:
        await writer.start()
        results = await asyncio.gather(
            *(writer.record(rig.event(n, action=a)) for n, a in enumerate(actions)),
            return_exceptions=True,
        )
        await writer.stop()
        return results

    return asyncio.run(scenario())


def verifies(rig: Rig) -> bool:
    report = verify_storage(
        rig.storage, signature_valid=rig.signer.verifier().valid, max_unsigned=10, wait=rig.wait()
    )
    return report.first_broken_seq is None


def stored_actions(rig: Rig) -> list[str]:
    with rig.storage.transaction() as tx:
        return [e.action for e in tx.audit.iterate()]


def test_an_event_the_database_refuses_fails_only_its_own_request(
    sql_rig: Rig, sql_url: str
) -> None:
    actions = ["pattern.execute"] * 20
    actions[7] = POISON
    storage = CountingStorage(sql_rig)
    with refused_by_the_database(sql_url, f"NEW.action = '{POISON}'"):
        results = record_all(GroupCommitAuditWriter(storage), sql_rig, actions)  # type: ignore[arg-type]
    assert isinstance(results[7], AuditUnavailableError)
    assert [r for n, r in enumerate(results) if n != 7] == [None] * 19
    assert stored_actions(sql_rig) == ["pattern.execute"] * 19
    assert verifies(sql_rig)
    # The batch, the probe, then one transaction an event.
    assert storage.transactions == 1 + 1 + 20


def test_a_database_refusing_every_event_fails_the_batch_after_a_few_tries(
    sql_rig: Rig, sql_url: str
) -> None:
    storage = CountingStorage(sql_rig)
    with refused_by_the_database(sql_url, "1 = 1"):
        results = record_all(GroupCommitAuditWriter(storage), sql_rig, ["pattern.execute"] * 50)  # type: ignore[arg-type]
    assert all(isinstance(r, AuditUnavailableError) for r in results)
    assert stored_actions(sql_rig) == []
    assert storage.transactions == 1 + 1 + GIVE_UP_AFTER


def test_refusals_in_a_row_give_up_the_rest_of_the_batch(sql_rig: Rig, sql_url: str) -> None:
    actions = ["pattern.execute"] * 10
    actions[2 : 2 + GIVE_UP_AFTER] = [POISON] * GIVE_UP_AFTER
    with refused_by_the_database(sql_url, f"NEW.action = '{POISON}'"):
        results = record_all(GroupCommitAuditWriter(sql_rig.storage), sql_rig, actions)
    assert results[:2] == [None, None]
    assert all(isinstance(r, AuditUnavailableError) for r in results[2:])
    assert stored_actions(sql_rig) == ["pattern.execute"] * 2


@pytest.mark.timeout(120)
def test_the_writer_process_fails_only_the_refused_events_request(tmp_path: Path) -> None:
    world = World(tmp_path)
    poisoned = {3, 11}

    async def scenario() -> list[BaseException | None]:
        await world.writer.start()
        events = [
            replace(event(n), action=POISON) if n in poisoned else event(n) for n in range(30)
        ]
        results = await asyncio.gather(
            *(world.writer.record(e) for e in events), return_exceptions=True
        )
        await world.writer.record(event(30))  # the writer goes on
        await world.writer.stop()
        return results

    with refused_by_the_database(world.config.storage.url, f"NEW.action = '{POISON}'"):
        results = asyncio.run(scenario())
    assert all(isinstance(results[n], AuditUnavailableError) for n in poisoned)
    assert [r for n, r in enumerate(results) if n not in poisoned] == [None] * 28
    assert world.stored() == 29
    assert world.verifies()
