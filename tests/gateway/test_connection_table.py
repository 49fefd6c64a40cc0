"""gateway.connections across worker processes: the table `bastion serve --workers N` shares.

Each "worker" here is a real process, a child of the test as uvicorn's workers are children
of the serving process, counting with `ConnectionCounter` over the shared table.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.gateway.connection_table import SharedTally, TableError, connection_table

PER_CLIENT, MAX = 3, 5

WORKER = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from bastion.gateway.connection_table import SharedTally
    from bastion.gateway.connections import ConnectionCounter, ConnectionLimits
    counter = ConnectionCounter(
        ConnectionLimits({MAX}, {PER_CLIENT}, ()), SharedTally(Path(sys.argv[1]))
    )
    print("ready", flush=True)
    for line in sys.stdin:
        command, peer = (line.split() + [""])[:2]
        if command == "admit":
            print(counter.admit(peer), flush=True)
        elif command == "release":
            counter.release(peer)
            print("released", flush=True)
        else:
            print(counter.open, counter.held_by(peer or None), flush=True)
    """
)


class Worker:
    def __init__(self, table: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(table)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.ask("") == "ready"

    def ask(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        if line:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def admit(self, peer: str) -> str:
        return self.ask(f"admit {peer}")

    def counts(self, peer: str) -> tuple[int, int]:
        total, held = self.ask(f"count {peer}").split()
        return int(total), int(held)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def table() -> Iterator[Path]:
    with connection_table(workers=2) as path:
        yield path


@pytest.fixture
def workers(table: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        started += [Worker(table), Worker(table)]
        yield started
    finally:
        for worker in started:
            worker.stop()


def test_one_client_is_held_to_its_share_across_workers(workers: list[Worker]) -> None:
    first, second = workers
    assert [first.admit("192.0.2.1") for _ in range(2)] == ["None", "None"]
    # Counted apart, the second worker would take three more from the same client.
    assert [second.admit("192.0.2.1") for _ in range(2)] == ["None", "per_client"]
    assert first.admit("192.0.2.1") == "per_client"
    assert first.counts("192.0.2.1") == second.counts("192.0.2.1") == (3, 3)


def test_the_total_caps_every_worker_together(workers: list[Worker]) -> None:
    first, second = workers
    peers = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert [first.admit(peer) for peer in peers] == ["None"] * 3
    assert [second.admit(peer) for peer in peers] == ["None", "None", "max"]
    assert first.admit("192.0.2.9") == "max"
    assert first.counts("192.0.2.9") == (MAX, 0)


def test_a_release_in_one_worker_frees_the_place_for_every_worker(workers: list[Worker]) -> None:
    first, second = workers
    for _ in range(PER_CLIENT):
        assert first.admit("2001:db8::1") == "None"
    assert second.admit("2001:db8::2") == "per_client"  # the same /64
    assert first.ask("release 2001:db8::1") == "released"
    assert second.admit("2001:db8::2") == "None"
    assert second.counts("2001:db8::3") == (PER_CLIENT, PER_CLIENT)


def test_a_killed_workers_connections_are_forgotten_when_its_replacement_starts(
    table: Path, workers: list[Worker]
) -> None:
    first, second = workers
    for _ in range(PER_CLIENT):
        assert first.admit("192.0.2.1") == "None"
    first.stop()  # SIGKILL: it gives nothing back, but its connections ended with it
    replacement = Worker(table)
    try:
        assert replacement.counts("192.0.2.1") == (0, 0)
        assert second.admit("192.0.2.1") == "None"
    finally:
        replacement.stop()


def test_a_worker_takes_no_row_another_live_worker_holds(table: Path) -> None:
    """Rows for twice the workers and the spares; past them a worker refuses to start
    rather than count on its own."""
    started: list[Worker] = []
    try:
        rows = SharedTally(table)._rows  # this process is no sibling: its row is free again
        started = [Worker(table) for _ in range(rows)]
        refused = subprocess.run(
            [sys.executable, "-c", WORKER, str(table)], capture_output=True, text=True, timeout=60
        )
        assert refused.returncode != 0
        assert f"all {rows} rows of the connection table" in refused.stderr
    finally:
        for worker in started:
            worker.stop()


def test_a_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"x" * 4096)
    with pytest.raises(TableError, match="is not a bastion connection table"):
        SharedTally(other)


def test_the_table_is_removed_when_serving_ends() -> None:
    with connection_table(workers=2) as path:
        assert path.exists()
        assert path.stat().st_mode & 0o077 == 0  # the bucket key is the owner's only
    assert not path.exists()
