"""Wiring of the audit trail from ``security.audit`` and ``security.dataProtection``: the
recorder every write goes through, the request sink of ``bastion serve``, and the keys.

Relative paths (spool, file destination) are relative to the working directory, as the
default SQLite database is.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bastion.backends import MEMORY_URL
from bastion.backends.audit_sinks import (
    DeliveryService,
    DeliveryWorker,
    SpoolOutbox,
    SpoolState,
    build_destinations,
    spools_of,
)
from bastion.backends.protocols import Storage
from bastion.config import BastionConfig
from bastion.core.audit_policy import AuditPolicy
from bastion.core.masking import FieldMasker
from bastion.crypto.checkpoints import (
    CheckpointKeyError,
    CheckpointSigner,
    CheckpointVerifier,
    masking_hash_key,
)
from bastion.errors import ConfigError, ConfigIssue
from bastion.services.audit import (
    AuditRecorder,
    AuditSink,
    BestEffortAuditSink,
    GroupCommitAuditWriter,
    NullAuditSink,
    RecordingStorage,
    SealPolicy,
)
from bastion.services.audit.process_writer import ProcessAuditWriter
from bastion.services.audit.recorder import seal_each_commit
from bastion.services.audit.retention import RetentionJob
from bastion.services.audit.writer import AuditSinkWithJobs, BackgroundJob
from bastion.services.clock import Clock


def _pepper(config: BastionConfig) -> bytes:
    pepper = config.security.pepper
    if pepper is None:
        raise ConfigError([ConfigIssue("security.pepper", "required to sign audit checkpoints")])
    return pepper.get_secret_value().encode()


def checkpoint_signer_from(config: BastionConfig) -> CheckpointSigner:
    """``security.audit.signingKey`` (a PEM), else a key derived from the pepper."""
    pem = config.security.audit.signing_key
    if pem is None:
        return CheckpointSigner.from_pepper(_pepper(config))
    try:
        return CheckpointSigner.from_pem(pem.get_secret_value().encode())
    except CheckpointKeyError as exc:
        raise ConfigError([ConfigIssue("security.audit.signingKey", str(exc))]) from None


def checkpoint_verifier_from(
    config: BastionConfig | None, public_keys: Sequence[Path] = ()
) -> CheckpointVerifier:
    """The public keys given (PEM files), plus the configured key's own when ``config``."""
    try:
        verifier = CheckpointVerifier.from_pems([p.read_bytes() for p in public_keys])
    except OSError as exc:
        raise ConfigError([ConfigIssue("--public-key", exc.strerror or "unreadable")]) from None
    except CheckpointKeyError as exc:
        raise ConfigError([ConfigIssue("--public-key", str(exc))]) from None
    if config is None:
        return verifier
    own = checkpoint_signer_from(config).verifier()
    return CheckpointVerifier.merged(own, verifier)


def field_masker_from(config: BastionConfig) -> FieldMasker | None:
    masking = config.security.data_protection.masking
    if not masking.enabled or not masking.fields:
        return None
    key = masking_hash_key(_pepper(config)) if masking.method == "hash" else b""
    return FieldMasker(masking.fields, method=masking.method, hash_key=key)


def audit_recorder_from(
    config: BastionConfig, *, clock: Clock, base_dir: Path | None = None
) -> AuditRecorder:
    audit = config.security.audit
    spools = spools_of(audit, base_dir=base_dir or Path.cwd())
    return AuditRecorder(
        signer=checkpoint_signer_from(config),
        clock=clock,
        policy=AuditPolicy.of(audit.events, audit.level),
        fields=field_masker_from(config),
        seal=SealPolicy(every=audit.checkpoints.every, interval=audit.checkpoints.interval),
        outbox=SpoolOutbox(list(spools.values())),
    )


def recording_storage(storage: Storage, config: BastionConfig, *, clock: Clock) -> Storage:
    """``storage`` with every audit write going through the configured recorder."""
    if isinstance(storage, RecordingStorage):
        return storage
    return RecordingStorage(storage, audit_recorder_from(config, clock=clock))


def spool_states(config: BastionConfig, *, base_dir: Path | None = None) -> dict[str, SpoolState]:
    """Each configured destination's delivery state, read from its spool."""
    spools = spools_of(config.security.audit, base_dir=base_dir or Path.cwd())
    return {name: spool.read_state() for name, spool in spools.items()}


def audit_sink_from(
    config: BastionConfig,
    *,
    storage: Storage,
    clock: Clock,
    base_dir: Path | None = None,
    writer_process: bool = False,
) -> AuditSink:
    """The per-request sink with its delivery and retention jobs. With ``writer_process``
    (``bastion serve``) and a database that another process can open, batches are stored by
    a writer process of their own (`ProcessAuditWriter`); otherwise by a thread."""
    audit = config.security.audit
    if not audit.enabled:
        # No writer, so no idle sealer: the changes still recorded are sealed as they commit.
        seal_each_commit(storage)
        return NullAuditSink()
    where = base_dir or Path.cwd()
    jobs: list[BackgroundJob] = []
    spools = spools_of(audit, base_dir=where)
    destinations = build_destinations(audit, base_dir=where)
    if destinations:
        workers = [DeliveryWorker(spools[d.name], d) for d in destinations]
        jobs.append(DeliveryService(workers))
    if audit.retention is not None:
        jobs.append(
            RetentionJob(
                storage,
                retention=audit.retention,
                clock=clock,
                tenant=config.security.default_tenant,
            )
        )
    sink: AuditSink
    if writer_process and config.storage.url != MEMORY_URL:
        command = [sys.executable, "-m", "bastion.audit_process"]
        sink = ProcessAuditWriter(storage, command=command, setup=(config, str(where)))
    else:
        sink = GroupCommitAuditWriter(storage)
    if not audit.required:
        sink = BestEffortAuditSink(sink)
    return AuditSinkWithJobs(sink, jobs) if jobs else sink
