"""Audit destinations besides the database: file, syslog, Splunk, Elasticsearch, CloudWatch.

`build_destinations` reads ``security.audit``; `SpoolOutbox` is the `Outbox` the recorder
publishes committed events to (one bounded spool per destination); `DeliveryService` runs
one delivery thread per destination inside ``bastion serve``. All network and file I/O for
destinations lives in this package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.backends.audit_sinks.base import CHECKPOINT_KEY, DeliveryError, Destination
from bastion.backends.audit_sinks.delivery import Backoff, DeliveryWorker
from bastion.backends.audit_sinks.spool import Spool, SpoolState
from bastion.config.models_audit import AuditConfig
from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_to_json
from bastion.core.audit_formats import ascii_json, json_line
from bastion.core.model import AuditEvent
from bastion.errors import ConfigError, ConfigIssue

__all__ = [
    "Backoff",
    "DeliveryError",
    "DeliveryService",
    "DeliveryWorker",
    "Destination",
    "Spool",
    "SpoolOutbox",
    "SpoolState",
    "build_destinations",
    "spools_of",
]

log = logging.getLogger("bastion.audit.delivery")


def build_destinations(audit: AuditConfig, *, base_dir: Path) -> list[Destination]:
    """One destination per name in ``security.audit.destination`` (besides the database)."""
    built: list[Destination] = []
    for name in audit.destinations:
        if name == "file" and audit.file is not None:
            from bastion.backends.audit_sinks.file import FileDestination

            rotation = audit.file.rotation
            built.append(
                FileDestination(
                    base_dir / audit.file.path,
                    max_size=rotation.max_size,
                    max_age=rotation.max_age,
                    compress=rotation.compress,
                )
            )
        elif name == "syslog" and audit.syslog is not None:
            from bastion.backends.audit_sinks.syslog import SyslogDestination

            s = audit.syslog
            socket_path = str(base_dir / s.socket) if s.socket else None
            built.append(
                SyslogDestination(
                    protocol=s.protocol,
                    host=s.host,
                    port=s.port,
                    socket_path=socket_path,
                    facility=s.facility,
                )
            )
        elif name == "splunk" and audit.splunk is not None:
            from bastion.backends.audit_sinks.http import SplunkHecDestination

            k = audit.splunk
            built.append(
                SplunkHecDestination(
                    host=k.host,
                    port=k.port,
                    token=k.token.get_secret_value(),
                    index=k.index,
                    tls=k.tls,
                    ca_file=k.ca_file,
                )
            )
        elif name == "elasticsearch" and audit.elasticsearch is not None:
            from bastion.backends.audit_sinks.http import ElasticsearchBulkDestination

            e = audit.elasticsearch
            built.append(
                ElasticsearchBulkDestination(
                    hosts=list(e.hosts),
                    index=e.index,
                    username=e.username,
                    password=e.password.get_secret_value() if e.password else None,
                    ca_file=e.ca_file,
                )
            )
        elif name == "cloudwatch" and audit.cloudwatch is not None:
            built.append(_cloudwatch(audit))
    return built


def _cloudwatch(audit: AuditConfig) -> Destination:
    assert audit.cloudwatch is not None
    try:
        from bastion.backends.audit_sinks.cloudwatch import CloudWatchDestination
    except ImportError:
        issue = ConfigIssue("security.audit.cloudwatch", "needs boto3 (pip install 'bastion[aws]')")
        raise ConfigError([issue]) from None
    c = audit.cloudwatch
    return CloudWatchDestination(
        log_group=c.log_group, region=c.region, log_stream=c.log_stream, endpoint_url=c.endpoint_url
    )


def spools_of(audit: AuditConfig, *, base_dir: Path) -> dict[str, Spool]:
    """The spool of each configured destination, by destination name."""
    root = base_dir / audit.spool.path
    return {name: Spool(root / name, max_bytes=audit.spool.max_size) for name in audit.destinations}


class SpoolOutbox:
    """The recorder's `Outbox`: committed events and checkpoints go to every spool."""

    def __init__(self, spools: Sequence[Spool]) -> None:
        self.spools = list(spools)

    def publish(self, events: Sequence[AuditEvent], checkpoints: Sequence[AuditCheckpoint]) -> None:
        if not self.spools:
            return
        lines = [json_line(e) for e in events]
        lines += [ascii_json({CHECKPOINT_KEY: checkpoint_to_json(c)}) for c in checkpoints]
        for spool in self.spools:
            try:
                dropped = spool.append(lines)
            except OSError as exc:
                log.error("audit spool %s not written: %s", spool.directory.name, exc.strerror)
                continue
            if dropped:
                log.warning("audit spool %s is full: %d records dropped", spool.directory, dropped)


@dataclass
class DeliveryService:
    """Runs a `DeliveryWorker` per destination (started by ``bastion serve``)."""

    workers: list[DeliveryWorker]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
