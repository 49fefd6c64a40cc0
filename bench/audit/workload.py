"""Workloads for bench/audit: request events as the gateway builds them, storages, timers."""

from __future__ import annotations

import os
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from bastion.backends import open_storage
from bastion.backends.protocols import Storage
from bastion.core.audit_policy import CATEGORIES, AuditPolicy
from bastion.core.model import AuditEvent
from bastion.crypto.checkpoints import CheckpointSigner
from bastion.services.audit import AuditRecorder, RecordingStorage, SealPolicy, build_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# A signed checkpoint every this many events (what `bastion audit verify` allows unsigned).
SEAL_EVERY = 1000
# ... or this long after the last one (with its slack, how long verify allows them unsigned).
SEAL_INTERVAL = timedelta(seconds=60)
ACTIONS = [f"{r}.{v}" for r in ("pattern", "execution", "agent", "apikey") for v in "abcde"]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@dataclass
class Shape:
    actors: int = 1000
    resources: int = 5000
    tenants: int = 5
    span: timedelta = timedelta(days=30)


def request_events(count: int, *, shape: Shape, seed: int = 7) -> list[AuditEvent]:
    """Events as `bastion.services.access.request_event` builds them (before masking)."""
    rng = random.Random(seed)
    step = shape.span / count
    events = []
    for n in range(count):
        actor = f"user{int(rng.paretovariate(1.2)) % shape.actors}@example.com"
        status = rng.choice((200, 200, 200, 201, 403, 401))
        outcome = "success" if status < 400 else ("denied" if status == 403 else "failure")
        resource = rng.randrange(shape.resources)
        events.append(
            build_event(
                action=rng.choice(ACTIONS),
                outcome=outcome,
                tenant=f"tenant{n % shape.tenants}",
                now=T0 + step * n,
                actor={
                    "type": "user",
                    "id": actor,
                    "credential": f"key_{secrets.token_hex(16)}",
                    "ip": f"10.{n % 250}.{rng.randrange(250)}.{rng.randrange(250)}",
                    "userAgent": "parallax-cli/1.0.0",
                },
                resource={"type": "patterns", "id": f"pattern-{resource}"},
                details={"status": status, "reasons": ["binding admin grants patterns:read"]},
                request={
                    "method": "POST",
                    "path": f"/api/patterns/pattern-{resource}/execute",
                    "requestId": f"req_{secrets.token_hex(16)}",
                },
            )
        )
    return events


def plain_copies(events: list[AuditEvent]) -> list[AuditEvent]:
    """The same events as a plain audit table would store them: numbered, no chain."""
    return [replace(e, seq=n, prev_hash="0" * 64, hash="1" * 64) for n, e in enumerate(events, 1)]


def recorder(clock: Callable[[], datetime]) -> AuditRecorder:
    class Clock:
        def now(self) -> datetime:
            return clock()

    return AuditRecorder(
        signer=CheckpointSigner.from_pepper(b"bench-pepper-" + b"x" * 32),
        clock=Clock(),
        policy=AuditPolicy.of(CATEGORIES, "standard"),
        seal=SealPolicy(every=SEAL_EVERY, interval=SEAL_INTERVAL),
    )


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"bastion_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(drop)


def reset_postgres(url: str) -> None:
    """Empty the benchmark database's schema (tables, indexes, migration history)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def fresh_storage(url: str) -> Storage:
    storage = open_storage(url)
    storage.migrate()
    return storage


def recording(storage: Storage, clock: Callable[[], datetime]) -> RecordingStorage:
    return RecordingStorage(storage, recorder(clock))


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
