"""The writer process of ``bastion serve`` (`ProcessAuditWriter` and `bastion.audit_process`):
every ``record`` that returns is durable, a writer that dies or hangs fails only its batch and
the next batch starts a new one, a writer that cannot open the database stops the start, and
nothing crosses the pipe unmasked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.backends import open_storage
from bastion.config import BastionConfig, parse_config
from bastion.core.audit import prepare_event
from bastion.core.audit_verify import SealWait
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError
from bastion.services.audit import build_event
from bastion.services.audit.process_writer import ProcessAuditWriter, to_wire
from bastion.services.audit.verify import verify_storage
from bastion.services.clock import SystemClock
from bastion.wiring_audit import checkpoint_verifier_from, recording_storage

from .conftest import T0

COMMAND = (sys.executable, "-m", "bastion.audit_process")


def config_for(url: str) -> BastionConfig:
    return parse_config(f"storage:\n  url: {url}\nsecurity:\n  pepper: {'w' * 40}\n", source="test")


def event(n: int) -> AuditEvent:
    return build_event(
        action="pattern.execute",
        outcome="success",
        tenant="acme",
        now=T0,
        actor={"type": "user", "id": f"user{n % 3}@example.com"},
        resource={"type": "patterns", "id": f"p{n % 4}"},
        details={"n": n},
    )


class World:
    def __init__(
        self, tmp_path: Path, *, batch_timeout: float = 120.0, split_at: int = 500
    ) -> None:
        self.config = config_for(f"sqlite:///{tmp_path}/audit.db")
        self.storage = recording_storage(
            open_storage(self.config.storage.url), self.config, clock=SystemClock()
        )
        self.storage.migrate()
        self.writer = ProcessAuditWriter(
            self.storage,
            command=COMMAND,
            setup=(self.config, str(tmp_path)),
            batch_timeout=batch_timeout,
            split_at=split_at,
        )

    def child_pid(self) -> int:
        child = self.writer._child
        assert child is not None
        return child.pid

    def stored(self) -> int:
        with self.storage.transaction() as tx:
            bounds = tx.audit.bounds()
        return 0 if bounds is None else bounds[1] - bounds[0] + 1

    def verifies(self) -> bool:
        report = verify_storage(
            self.storage,
            signature_valid=checkpoint_verifier_from(self.config).valid,
            max_unsigned=self.config.security.audit.checkpoints.every,
            wait=SealWait(self.config.security.audit.checkpoints.interval, datetime.now(UTC)),
        )
        return report.first_broken_seq is None


@pytest.mark.timeout(120)
def test_records_from_concurrent_callers_are_durable_when_they_return(tmp_path: Path) -> None:
    world = World(tmp_path)

    async def scenario() -> None:
        await world.writer.start()
        await asyncio.gather(*(world.writer.record(event(n)) for n in range(300)))
        assert world.stored() == 300
        await world.writer.stop()

    asyncio.run(scenario())
    assert world.verifies()


@pytest.mark.timeout(120)
def test_batches_split_while_the_writer_works_arrive_in_order_and_chain(tmp_path: Path) -> None:
    world = World(tmp_path, split_at=40)

    async def scenario() -> None:
        await world.writer.start()
        for _ in range(3):  # callers come back for more while earlier batches are stored
            await asyncio.gather(*(world.writer.record(event(n)) for n in range(400)))
        assert world.stored() == 1200
        await world.writer.stop()

    asyncio.run(scenario())
    assert world.verifies()
    with world.storage.transaction() as tx:
        details = [e.details["n"] for e in tx.audit.iterate()]
    assert details == list(range(400)) * 3  # stored in the order the callers recorded


@pytest.mark.timeout(120)
def test_a_writer_killed_with_two_batches_under_way_fails_both_then_is_replaced(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, split_at=20)

    async def scenario() -> None:
        await world.writer.start()
        first = world.child_pid()
        os.kill(first, signal.SIGSTOP)  # holds both batches until it is killed
        tasks = [asyncio.create_task(world.writer.record(event(n))) for n in range(40)]
        await asyncio.sleep(0.5)
        assert not any(task.done() for task in tasks)
        assert world.writer._in_flight == 2
        os.kill(first, signal.SIGKILL)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, AuditUnavailableError) for r in results)
        await world.writer.record(event(99))
        assert world.child_pid() != first
        await world.writer.stop()

    asyncio.run(scenario())
    assert world.stored() == 1
    assert world.verifies()


@pytest.mark.timeout(120)
def test_a_killed_writer_process_is_replaced_by_the_next_batch(tmp_path: Path) -> None:
    world = World(tmp_path)

    async def scenario() -> None:
        await world.writer.start()
        await world.writer.record(event(1))
        first = world.child_pid()
        os.kill(first, signal.SIGKILL)
        results = await asyncio.gather(
            *(world.writer.record(event(n)) for n in range(2, 40)),
            return_exceptions=True,
        )
        # A batch sent to the dead writer fails whole; none returns without being stored.
        assert all(r is None or isinstance(r, AuditUnavailableError) for r in results)
        await world.writer.record(event(99))
        assert world.child_pid() != first
        assert world.stored() == 2 + sum(r is None for r in results)
        await world.writer.stop()

    asyncio.run(scenario())
    assert world.verifies()


@pytest.mark.timeout(120)
def test_a_hung_writer_process_fails_its_batch_then_a_new_one_takes_over(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, batch_timeout=1.0)

    async def scenario() -> None:
        await world.writer.start()
        hung = world.child_pid()
        os.kill(hung, signal.SIGSTOP)
        try:
            with pytest.raises(AuditUnavailableError):
                await world.writer.record(event(1))
        finally:
            with contextlib.suppress(ProcessLookupError):  # the writer killed it already
                os.kill(hung, signal.SIGCONT)
        await world.writer.record(event(2))
        assert world.child_pid() != hung
        await world.writer.stop()

    asyncio.run(scenario())
    assert world.stored() == 1


@pytest.mark.timeout(120)
def test_a_writer_that_cannot_open_the_database_stops_the_start(tmp_path: Path) -> None:
    world = World(tmp_path)
    bad = config_for(f"sqlite:///{tmp_path}/missing-dir/audit.db")
    writer = ProcessAuditWriter(world.storage, command=COMMAND, setup=(bad, str(tmp_path)))

    async def scenario() -> None:
        with pytest.raises(AuditUnavailableError, match="did not start"):
            await writer.start()
        with pytest.raises(AuditUnavailableError):
            await writer.record(event(1))

    asyncio.run(scenario())


def test_nothing_unmasked_crosses_to_the_writer_process() -> None:
    key = "bk_live_" + "A1b2C3d4" * 5
    # A float keeps the event off the fast encoding, whose text check would have caught it.
    leaky = build_event(
        action="pattern.execute",
        outcome="success",
        tenant="acme",
        now=T0,
        actor={"type": "user", "id": "alice@example.com"},
        details={"score": 0.5, "note": f"sent {key} by mistake"},
    )
    prepared = prepare_event(leaky)
    assert prepared.encoded is None
    assert key not in repr(to_wire(prepared))


GARBLED_WRITER = """
import struct, sys
from bastion.services.audit.process_writer import read_frame, write_frame
replies = sys.stdout.buffer
read_frame(sys.stdin.buffer)
write_frame(replies, ("ready",))
while read_frame(sys.stdin.buffer) is not None:
    answer = b"cnosuchmodule\\nthing\\n."  # a pickle naming a module that does not exist
    replies.write(struct.pack(">I", len(answer)) + answer)
    replies.flush()
"""


@pytest.mark.timeout(60)
def test_an_answer_that_does_not_decode_fails_the_batch_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(tmp_path)
    writer = ProcessAuditWriter(
        world.storage,
        command=(sys.executable, "-c", GARBLED_WRITER),
        setup=(world.config, str(tmp_path)),
        batch_timeout=600,  # it must not take a timeout to notice
    )

    async def scenario() -> None:
        await writer.start()
        with pytest.raises(AuditUnavailableError):
            await writer.record(event(1))
        await writer.stop()

    asyncio.run(scenario())
    assert "answer is unreadable: ModuleNotFoundError" in caplog.text
