"""Crash safety: under load, ``kill -9`` bastion at random moments (20 times by default,
``BASTION_CRASH_KILLS`` for a longer run), restart it each time, and check that every request
the clients saw answered is in the trail and that the trail verifies: a crash never loses an
answered request's event nor leaves a half-written one accepted."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.audit_stack import AuditStack, audit_stack, request_id

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("BASTION_CRASH_KILLS", "20"))


class Load:
    """Clients sending allowed, denied and unauthenticated requests until stopped."""

    def __init__(self, stack: AuditStack, *, clients: int = 4) -> None:
        self.stack = stack
        self.answered: list[tuple[int, str | None]] = []
        self.refused_connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, client_no: int) -> None:
        stack, n = self.stack, 0
        with httpx.Client(base_url=stack.base, timeout=10) as client:
            while not self._stop.is_set():
                n += 1
                kind = (n + client_no) % 3
                try:
                    if kind == 0:
                        response = client.get("/api/patterns", headers=_auth(stack.admin_key))
                    elif kind == 1:
                        response = client.post(
                            "/api/patterns/x/execute", headers=_auth(stack.limited_key)
                        )
                    else:
                        response = client.get("/api/patterns")
                except httpx.HTTPError:
                    with self._lock:
                        self.refused_connections += 1
                    time.sleep(0.02)
                    continue
                with self._lock:
                    self.answered.append((response.status_code, request_id(response)))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.mark.timeout(900)
def test_kill_9_under_load_loses_no_answered_request(
    tmp_path: Path, storage_url: str | None
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with audit_stack(tmp_path, storage_url=storage_url) as stack, Load(stack) as load:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 1.0))
            stack.kill()
            stack.start()
        time.sleep(0.5)
    answered = [(status, rid) for status, rid in load.answered if status != 503]
    assert len(answered) >= 10 * KILLS, f"too little load to mean anything (seed {seed})"
    assert all(rid for _, rid in answered)
    logged = {e["request"].get("requestId") for e in stack.events()}  # type: ignore[union-attr]
    missing = [rid for _, rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} answered requests not in the trail (seed {seed})"
    verified = stack.cli("audit", "verify")
    assert verified.stdout.startswith("ok: "), verified.stdout
    print(  # the numbers a longer run reports
        f"kills={KILLS} answered={len(answered)} logged={len(logged)}"
        f" refused_connections={load.refused_connections} seed={seed}"
    )


def writer_process_of(server_pid: int) -> int | None:
    """The pid of ``bastion serve``'s audit writer process (its child), if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == server_pid and b"bastion.audit_process" in cmdline:
            return int(entry.name)
    return None


@pytest.mark.timeout(300)
def test_kill_9_of_the_writer_process_refuses_its_batch_then_recovers(tmp_path: Path) -> None:
    with audit_stack(tmp_path) as stack, Load(stack) as load:
        assert stack.server is not None
        killed = []
        for _ in range(5):
            time.sleep(0.5)
            pid = writer_process_of(stack.server.pid)
            assert pid is not None, "bastion serve has no audit writer process"
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(1.0)
        recovered = stack.get("/api/patterns", key=stack.admin_key)
        replacement = writer_process_of(stack.server.pid)
    assert recovered.status_code == 200
    assert replacement is not None and replacement not in killed
    answered = [(status, rid) for status, rid in load.answered if status != 503]
    assert len(answered) >= 50, "too little load to mean anything"
    logged = {e["request"].get("requestId") for e in stack.events()}  # type: ignore[union-attr]
    missing = [rid for _, rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} answered requests not in the trail"
    assert stack.cli("audit", "verify").stdout.startswith("ok: ")
