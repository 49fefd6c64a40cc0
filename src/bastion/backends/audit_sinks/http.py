"""HTTP destinations: Splunk's HTTP Event Collector and Elasticsearch's bulk API.

Both use the standard library's HTTP client from the delivery thread (one keep-alive
connection each, TLS verified against the system store or ``caFile``). Elasticsearch writes
use ``create`` with the event id as document id, so a batch retried after a timeout cannot
duplicate events: a 409 for an id already there counts as delivered.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bastion.backends.audit_sinks.base import (
    CHECKPOINT_KEY,
    BatchTooLargeError,
    DeliveryError,
    Record,
    RecordRefusedError,
    is_checkpoint,
    record_kind,
    record_time,
)
from bastion.core.audit_formats import ascii_json

_TIMEOUT_SECONDS = 15.0


class _Endpoint:
    """One keep-alive connection to ``scheme://host:port``."""

    def __init__(self, scheme: str, host: str, port: int, *, ca_file: str | None) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self._context = ssl.create_default_context(cafile=ca_file) if scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._conn is None:
            if self._context is not None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=_TIMEOUT_SECONDS, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=_TIMEOUT_SECONDS
                )
        try:
            self._conn.request("POST", path, body=body, headers=headers)
            response = self._conn.getresponse()
            return response.status, response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self.close()
            raise DeliveryError(f"{self.host}:{self.port}: {type(exc).__name__}") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SplunkHecDestination:
    """POST ``/services/collector/event`` with ``Authorization: Splunk <token>``."""

    name = "splunk"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        token: str,
        index: str | None,
        tls: bool = True,
        ca_file: str | None = None,
    ) -> None:
        self._endpoint = _Endpoint("https" if tls else "http", host, port, ca_file=ca_file)
        self._token = token
        self._index = index
        self._source_host = socket.gethostname()

    def payload(self, record: Record) -> dict[str, Any]:
        item: dict[str, Any] = {
            "time": round(record_time(record).timestamp(), 3),
            "host": self._source_host,
            "source": "bastion",
            "sourcetype": "bastion:audit" if not is_checkpoint(record) else "bastion:checkpoint",
            "event": dict(record),
        }
        if self._index:
            item["index"] = self._index
        return item

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        body = "\n".join(ascii_json(self.payload(r)) for r in records).encode()
        headers = {"Authorization": f"Splunk {self._token}", "Content-Type": "application/json"}
        status, answer = self._endpoint.post("/services/collector/event", body, headers)
        if status != 200:
            raise _answer_error("splunk HEC", status, records)
        try:
            code = json.loads(answer).get("code")
        except (ValueError, AttributeError):
            code = None
        if code not in (0, None):
            raise DeliveryError(f"splunk HEC refused the batch (code {code})")

    def close(self) -> None:
        self._endpoint.close()

    def __repr__(self) -> str:
        return "SplunkHecDestination(<token hidden>)"


class ElasticsearchBulkDestination:
    """POST ``/_bulk`` (NDJSON): one ``create`` per record, id = event id."""

    name = "elasticsearch"

    def __init__(
        self,
        *,
        hosts: Sequence[str],
        index: str,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._endpoints = []
        for url in hosts:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 9200)
            endpoint = _Endpoint(parts.scheme, parts.hostname or "", port, ca_file=ca_file)
            self._endpoints.append((endpoint, parts.path.rstrip("/")))
        self._index = index
        self._auth: str | None = None
        if username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode()

    def bulk_body(self, records: Sequence[Record]) -> bytes:
        lines: list[str] = []
        for record in records:
            if is_checkpoint(record):
                doc_id = f"checkpoint-{record[CHECKPOINT_KEY]['seq']}"
            else:
                doc_id = str(record["eventId"])
            document = {**record, "@timestamp": record_time(record).isoformat()}
            document["kind"] = record_kind(record)
            lines.append(ascii_json({"create": {"_index": self._index, "_id": doc_id}}))
            lines.append(ascii_json(document))
        return ("\n".join(lines) + "\n").encode()

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        body = self.bulk_body(records)
        headers = {"Content-Type": "application/x-ndjson"}
        if self._auth:
            headers["Authorization"] = self._auth
        failure = DeliveryError("elasticsearch: no host configured")
        for endpoint, base in self._endpoints:
            try:
                status, answer = endpoint.post(f"{base}/_bulk", body, headers)
            except DeliveryError as exc:
                failure = exc
                continue
            if status != 200:
                failure = _answer_error("elasticsearch", status, records)
                continue
            _check_bulk_items(answer)
            return
        raise failure

    def close(self) -> None:
        for endpoint, _ in self._endpoints:
            endpoint.close()

    def __repr__(self) -> str:
        return "ElasticsearchBulkDestination(<credentials hidden>)"


def _answer_error(receiver: str, status: int, records: Sequence[Record]) -> DeliveryError:
    """The error for a non-200 answer. 413 to a batch of one record (a record too long to
    share a batch travels alone) is refused for good: the same request can never pass; to a
    batch of several, it asks for smaller batches."""
    if status == 413 and len(records) == 1:
        return RecordRefusedError(f"{receiver} answered HTTP 413: record too large", index=0)
    if status == 413:
        return BatchTooLargeError(f"{receiver} answered HTTP 413 to {len(records)} records")
    return DeliveryError(f"{receiver} answered HTTP {status}")


def _check_bulk_items(answer: bytes) -> None:
    try:
        result = json.loads(answer)
    except ValueError:
        raise DeliveryError("elasticsearch answered with something other than JSON") from None
    if not result.get("errors"):
        return
    for item in result.get("items", []):
        result_of: dict[str, Any] = next(iter(item.values()), {})
        status = result_of.get("status", 0)
        if status not in (200, 201, 409):
            raise DeliveryError(f"elasticsearch refused a document (HTTP {status})")
