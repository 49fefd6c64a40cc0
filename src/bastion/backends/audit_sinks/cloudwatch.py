"""The ``cloudwatch`` destination: CloudWatch Logs ``PutLogEvents`` through boto3.

The log group and stream are created on first use if missing. A batch is sorted by time (the
service requires it) and split at 10,000 events or 1 MiB; an event that alone is over 1 MiB
can never be put, so it is refused (dropped and counted by delivery). Credentials come from
boto3's usual chain (environment, profile, instance role). boto3 and botocore stay inside
this module.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from bastion.backends.audit_sinks.base import (
    DeliveryError,
    Record,
    RecordRefusedError,
    record_time,
)
from bastion.core.audit_formats import ascii_json

log = logging.getLogger("bastion.audit.delivery")

MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
_EVENT_OVERHEAD = 26  # bytes CloudWatch adds to each message when sizing a batch


class CloudWatchDestination:
    name = "cloudwatch"

    def __init__(
        self,
        *,
        log_group: str,
        region: str,
        log_stream: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.log_group = log_group
        self.log_stream = log_stream or f"bastion-{socket.gethostname()}"
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10)
        self._client: Any = boto3.client(
            "logs", region_name=region, endpoint_url=endpoint_url, config=config
        )
        self._ready = False

    def _ensure_stream(self) -> None:
        if self._ready:
            return
        for call, kwargs in (
            (self._client.create_log_group, {"logGroupName": self.log_group}),
            (
                self._client.create_log_stream,
                {"logGroupName": self.log_group, "logStreamName": self.log_stream},
            ),
        ):
            try:
                call(**kwargs)
            except ClientError as exc:
                if _code(exc) != "ResourceAlreadyExistsException":
                    raise
        self._ready = True

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        entries: list[dict[str, Any]] = [
            {"timestamp": int(record_time(r).timestamp() * 1000), "message": ascii_json(dict(r))}
            for r in records
        ]
        too_large = next((i for i, e in enumerate(entries) if _cost(e) > MAX_BYTES), None)
        self._put(entries[:too_large])
        if too_large is not None:
            size = _cost(entries[too_large])
            reason = f"cloudwatch: a {size}-byte event is over the 1 MiB limit"
            raise RecordRefusedError(reason, index=too_large)

    def _put(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        entries.sort(key=lambda entry: int(entry["timestamp"]))
        try:
            self._ensure_stream()
            for batch in _batches(entries):
                answer = self._client.put_log_events(
                    logGroupName=self.log_group, logStreamName=self.log_stream, logEvents=batch
                )
                rejected = answer.get("rejectedLogEventsInfo")
                if rejected:
                    # Too old (14 days) or too far ahead: no retry can make them acceptable.
                    log.warning("cloudwatch refused some audit events for good: %s", rejected)
        except ClientError as exc:
            self._ready = False
            raise DeliveryError(f"cloudwatch: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise DeliveryError(f"cloudwatch: {type(exc).__name__}") from None

    def close(self) -> None:
        self._client.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


def _cost(entry: dict[str, Any]) -> int:
    """What an event counts for against the batch limit, which also bounds one event."""
    return len(entry["message"].encode()) + _EVENT_OVERHEAD


def _batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        cost = _cost(entry)
        if current and (len(current) >= MAX_EVENTS or size + cost > MAX_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(entry)
        size += cost
    if current:
        batches.append(current)
    return batches
