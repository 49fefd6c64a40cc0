"""The ``security.audit`` section: which events are recorded, how verbosely, and where."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from bastion.config.models_base import (
    ConfigModel,
    HttpUrl,
    NestedValueError,
    NonEmptyStr,
    Port,
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

ALL_AUDIT_EVENTS: tuple[AuditEventKind, ...] = get_args(AuditEventKind)


class RotationConfig(ConfigModel):
    """When the audit file is rotated, and whether old files are compressed."""

    max_size: ByteSize | None = None
    max_age: Duration | None = None
    compress: bool = False


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


class SplunkConfig(ConfigModel):
    """A Splunk HTTP Event Collector."""

    host: NonEmptyStr
    port: Port = 8088
    token: Secret
    index: NonEmptyStr | None = None


class CloudWatchConfig(ConfigModel):
    """An AWS CloudWatch Logs group."""

    log_group: NonEmptyStr
    region: NonEmptyStr


class SyslogConfig(ConfigModel):
    """A syslog receiver over UDP, TCP or a local unix socket."""

    host: NonEmptyStr | None = None
    port: Port = 514
    protocol: Literal["udp", "tcp", "unix"] = "udp"
    socket: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _check_target(self) -> SyslogConfig:
        if self.protocol == "unix" and self.socket is None:
            raise NestedValueError([(("socket",), "required when protocol is unix")])
        if self.protocol != "unix" and self.host is None:
            raise NestedValueError([(("host",), f"required when protocol is {self.protocol}")])
        return self


class AuditConfig(ConfigModel):
    """The tamper-evident audit trail."""

    enabled: bool = True
    required: bool = True
    events: tuple[AuditEventKind, ...] = ALL_AUDIT_EVENTS
    level: AuditLevel = "standard"
    destination: AuditDestination = "database"
    file: AuditFileConfig | None = None
    elasticsearch: ElasticsearchConfig | None = None
    splunk: SplunkConfig | None = None
    cloudwatch: CloudWatchConfig | None = None
    syslog: SyslogConfig | None = None
    retention: Duration | None = None

    @model_validator(mode="after")
    def _destination_is_configured(self) -> AuditConfig:
        if self.destination != "database" and getattr(self, self.destination) is None:
            message = f"required when destination is {self.destination}"
            raise NestedValueError([((self.destination,), message)])
        return self
