"""The ``security.audit`` section: which events are recorded, how verbosely, and where."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from bastion.config.models_base import (
    Bool,
    ConfigModel,
    HttpUrl,
    NestedValueError,
    NonEmptyStr,
    Port,
    PositiveInt,
    Secret,
)
from bastion.config.units import ByteSize, Duration

AuditEventKind = Literal[
    "authentication",
    "authorization",
    "patterns",
    "executions",
    "agents",
    "admin",
    "secrets",
    "config",
]
AuditLevel = Literal["minimal", "standard", "verbose"]
AuditDestination = Literal["file", "elasticsearch", "splunk", "cloudwatch", "syslog", "database"]
SyslogFacility = Literal[
    "kern",
    "user",
    "daemon",
    "auth",
    "syslog",
    "authpriv",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
]

ALL_AUDIT_EVENTS: tuple[AuditEventKind, ...] = get_args(AuditEventKind)


class RotationConfig(ConfigModel):
    """When the audit file is rotated, and whether old files are compressed."""

    max_size: ByteSize | None = None
    max_age: Duration | None = None
    compress: Bool = False


class AuditFileConfig(ConfigModel):
    """An append-only audit log file."""

    path: NonEmptyStr
    rotation: RotationConfig = RotationConfig()


class ElasticsearchConfig(ConfigModel):
    """An Elasticsearch index receiving audit events."""

    hosts: Annotated[tuple[HttpUrl, ...], Field(min_length=1)]
    index: NonEmptyStr
    username: str | None = None
    password: Secret | None = None
    ca_file: NonEmptyStr | None = None


class SplunkConfig(ConfigModel):
    """A Splunk HTTP Event Collector."""

    host: NonEmptyStr
    port: Port = 8088
    token: Secret
    index: NonEmptyStr | None = None
    tls: Bool = True
    ca_file: NonEmptyStr | None = None


class CloudWatchConfig(ConfigModel):
    """An AWS CloudWatch Logs group."""

    log_group: NonEmptyStr
    region: NonEmptyStr
    log_stream: NonEmptyStr | None = None
    endpoint_url: HttpUrl | None = None


class SyslogConfig(ConfigModel):
    """A syslog receiver over UDP, TCP or a local unix socket."""

    host: NonEmptyStr | None = None
    port: Port = 514
    protocol: Literal["udp", "tcp", "unix"] = "udp"
    socket: NonEmptyStr | None = None
    facility: SyslogFacility = "authpriv"

    @model_validator(mode="after")
    def _check_target(self) -> SyslogConfig:
        if self.protocol == "unix" and self.socket is None:
            raise NestedValueError([(("socket",), "required when protocol is unix")])
        if self.protocol != "unix" and self.host is None:
            raise NestedValueError([(("host",), f"required when protocol is {self.protocol}")])
        return self


class CheckpointsConfig(ConfigModel):
    """How often the chain is sealed by a signed checkpoint."""

    every: PositiveInt = 1000
    interval: Duration = timedelta(seconds=60)


class SpoolConfig(ConfigModel):
    """The bounded on-disk queue of events waiting for a destination."""

    path: NonEmptyStr = "./audit-spool"
    max_size: ByteSize = 100 * 1000 * 1000


class AuditConfig(ConfigModel):
    """The tamper-evident audit trail."""

    enabled: Bool = True
    required: Bool = True
    events: tuple[AuditEventKind, ...] = ALL_AUDIT_EVENTS
    level: AuditLevel = "standard"
    destination: AuditDestination | tuple[AuditDestination, ...] = "database"
    file: AuditFileConfig | None = None
    elasticsearch: ElasticsearchConfig | None = None
    splunk: SplunkConfig | None = None
    cloudwatch: CloudWatchConfig | None = None
    syslog: SyslogConfig | None = None
    retention: Duration | None = None
    signing_key: Secret | None = None
    checkpoints: CheckpointsConfig = CheckpointsConfig()
    spool: SpoolConfig = SpoolConfig()

    @field_validator("destination", mode="after")
    @classmethod
    def _unique_destinations(
        cls, value: AuditDestination | tuple[AuditDestination, ...]
    ) -> AuditDestination | tuple[AuditDestination, ...]:
        if isinstance(value, tuple) and len(set(value)) != len(value):
            raise ValueError("names a destination twice")
        return value

    @property
    def destinations(self) -> tuple[AuditDestination, ...]:
        """Every destination besides the database (which always holds the trail)."""
        named = (self.destination,) if isinstance(self.destination, str) else self.destination
        return tuple(d for d in named if d != "database")

    @model_validator(mode="after")
    def _destination_is_configured(self) -> AuditConfig:
        issues = [
            ((name,), f"required when destination is {name}")
            for name in self.destinations
            if getattr(self, name) is None
        ]
        if issues:
            raise NestedValueError(issues)
        return self
