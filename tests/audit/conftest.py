"""Audit test fixtures: a frozen clock, a signing key, storages wired through the recorder,
and the registry of every secret the audit tests create (checked at the end of the session:
none may appear in a database, audit file, spool or export they wrote)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bastion.backends import open_storage
from bastion.backends.protocols import Storage
from bastion.core.audit_policy import ALL, AuditPolicy
from bastion.core.audit_verify import SealWait, VerifyReport
from bastion.core.masking import FieldMasker
from bastion.core.model import AuditEvent
from bastion.crypto.checkpoints import CheckpointSigner, CheckpointVerifier
from bastion.services.audit import (
    AuditRecorder,
    NullOutbox,
    Outbox,
    RecordingStorage,
    SealPolicy,
    build_event,
)
from bastion.services.audit.export import export
from bastion.services.audit.verify import verify_export

from .secrets_registry import REGISTRY

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class FrozenClock:
    moment: datetime = T0

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class Rig:
    """A storage whose audit writes go through a recorder, as `bastion.wiring` builds it."""

    storage: RecordingStorage
    recorder: AuditRecorder
    clock: FrozenClock
    signer: CheckpointSigner
    raw: Storage = field(repr=False)

    def wait(self) -> SealWait:
        """How long the newest events may be unsealed, judged at the rig's clock."""
        return SealWait(self.recorder.seal.interval, self.clock.now())

    def append(self, *events: AuditEvent) -> list[AuditEvent]:
        from bastion.services.audit import append_events

        with self.storage.transaction() as tx:
            return append_events(tx, list(events))

    def event(self, n: int = 0, **kw: object) -> AuditEvent:
        fields: dict[str, object] = {
            "action": "pattern.execute",
            "outcome": "success",
            "tenant": "acme",
            "now": self.clock.now(),
            "actor": {"type": "user", "id": f"user{n % 3}@example.com", "ip": "10.0.0.1"},
            "resource": {"type": "patterns", "id": f"p{n % 4}"},
            "details": {"n": n},
            "request": {"method": "POST", "path": f"/api/patterns/p{n % 4}/execute"},
        }
        fields.update(kw)
        return build_event(**fields)  # type: ignore[arg-type]

    def fill(self, count: int, *, per_tx: int = 1) -> list[AuditEvent]:
        stored: list[AuditEvent] = []
        for start in range(0, count, per_tx):
            batch = [self.event(n) for n in range(start, min(start + per_tx, count))]
            stored += self.append(*batch)
            self.clock.advance(milliseconds=5)
        return stored


def make_rig(
    url: str,
    *,
    every: int = 10,
    interval: timedelta = timedelta(hours=1),
    policy: AuditPolicy = ALL,
    fields: FieldMasker | None = None,
    outbox: Outbox | None = None,
    clock: FrozenClock | None = None,
) -> Rig:
    raw = open_storage(url)
    raw.migrate()
    clock = clock or FrozenClock()
    signer = CheckpointSigner.from_pepper(b"rig-pepper-" + b"x" * 32)
    recorder = AuditRecorder(
        signer=signer,
        clock=clock,
        policy=policy,
        fields=fields,
        seal=SealPolicy(every=every, interval=interval),
        outbox=outbox or NullOutbox(),
    )
    return Rig(RecordingStorage(raw, recorder), recorder, clock, signer, raw)


def export_to(out: io.StringIO, rig: Rig, fmt: str = "ndjson", **kw: object) -> None:
    """``rig``'s trail exported to ``out`` as ``bastion audit export`` writes it."""
    export(
        rig.storage,
        out,
        fmt=fmt,  # type: ignore[arg-type]
        since=kw.get("since"),  # type: ignore[arg-type]
        signer=rig.signer,
        signature_valid=rig.signer.verifier().valid,
        now=rig.clock.now(),
    )


def write_export(rig: Rig, path: Path, fmt: str = "ndjson", **kw: object) -> Path:
    """``rig``'s trail exported to ``path`` as ``bastion audit export`` writes it."""
    out = io.StringIO()
    export_to(out, rig, fmt, **kw)
    path.write_text(out.getvalue())
    return path


def offline(rig: Rig, *paths: Path) -> VerifyReport:
    """Export files verified with ``rig``'s public key alone."""
    public = CheckpointVerifier.from_pems([rig.signer.public_pem()])
    return verify_export(list(paths), signature_valid=public.valid)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def storage_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("clean_postgres_url"))


@pytest.fixture
def rig(storage_url: str) -> Iterator[Rig]:
    built = make_rig(storage_url)
    yield built
    built.storage.close()


@pytest.fixture
def sqlite_rig(sqlite_url: str) -> Iterator[Rig]:
    built = make_rig(sqlite_url)
    yield built
    built.storage.close()


@pytest.fixture(scope="session", autouse=True)
def no_secret_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After every audit test: no registered secret in any file the tests wrote."""
    yield
    REGISTRY.assert_absent_under(Path(tmp_path_factory.getbasetemp()))
