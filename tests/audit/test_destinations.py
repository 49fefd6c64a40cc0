"""Each destination's wire format, checked by its real receiver or the standard stand-in:
the file (rotation by size and age, gzip), rsyslog over UDP, TCP and a unix socket, a local
HTTP receiver for Splunk HEC and the Elasticsearch bulk API, moto for CloudWatch Logs."""

from __future__ import annotations

import gzip
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.backends.audit_sinks import DeliveryWorker, Destination, Spool, SpoolOutbox
from bastion.backends.audit_sinks.file import FileDestination
from bastion.backends.audit_sinks.http import ElasticsearchBulkDestination, SplunkHecDestination
from bastion.backends.audit_sinks.syslog import SyslogDestination
from bastion.crypto.keys import new_secret_token

from .conftest import T0, FrozenClock, Rig, make_rig
from .receivers import http_receiver, moto_server, rsyslog, wait_for
from .secrets_registry import REGISTRY


def deliver(
    tmp_path: Path, destination: Destination, count: int = 6, clock: FrozenClock | None = None
) -> Rig:
    """Record ``count`` events through a spool and drain it into ``destination``."""
    spool = Spool(tmp_path / "spool" / destination.name, max_bytes=10**7)
    rig = make_rig("memory://", every=3, outbox=SpoolOutbox([spool]), clock=clock)
    rig.fill(count)
    worker = DeliveryWorker(spool, destination)
    for _ in range(50):  # bounded
        worker.step(now=rig.clock.now())
        if spool.read_state().pending == 0:
            break
    state = spool.read_state()
    assert state.pending == 0, state.last_error
    return rig


def stored(rig: Rig) -> list[dict[str, Any]]:
    from bastion.core.audit import event_to_json

    with rig.storage.transaction() as tx:
        return [json.loads(json.dumps(event_to_json(e))) for e in tx.audit.iterate()]


# --- file ---------------------------------------------------------------------------------


def test_file_destination_writes_events_and_checkpoints_0600(tmp_path: Path) -> None:
    path = tmp_path / "log" / "audit.log"
    rig = deliver(tmp_path, FileDestination(path))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x for x in lines if "seq" in x] == stored(rig)
    assert [x["auditCheckpoint"]["seq"] for x in lines if "auditCheckpoint" in x] == [1, 3, 6]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_file_rotates_by_size_and_gzips(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    destination = FileDestination(path, max_size=1500, compress=True)
    rig = deliver(tmp_path, destination, count=12)
    rotated = sorted(tmp_path.glob("audit.log.*.gz"))
    assert len(rotated) >= 2
    lines = [gzip.decompress(p.read_bytes()).decode() for p in rotated] + [path.read_text()]
    events = [json.loads(x) for chunk in lines for x in chunk.splitlines() if '"seq":' in x]
    assert [e["seq"] for e in events if "auditCheckpoint" not in e] == list(range(1, 13))
    assert all(p.stat().st_size > 0 for p in rotated)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in rotated)
    assert stored(rig)


def test_file_rotates_by_age(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    destination = FileDestination(path, max_age=timedelta(days=1))
    record = {"seq": 1, "timestamp": "2026-03-01T09:00:00.000Z"}
    destination.send([record], now=T0)
    destination.send([record], now=T0 + timedelta(hours=23))
    assert not list(tmp_path.glob("audit.log.*"))
    destination.send([record], now=T0 + timedelta(days=1, minutes=1))
    assert len(list(tmp_path.glob("audit.log.*"))) == 1
    assert len(path.read_text().splitlines()) == 1


# --- syslog (a real rsyslog) ----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["udp", "tcp", "unix"])
def test_syslog_reaches_rsyslog_as_rfc5424(tmp_path: Path, protocol: str) -> None:
    with rsyslog(tmp_path / "rsyslog") as server:
        targets: dict[str, dict[str, Any]] = {
            "udp": {"host": "127.0.0.1", "port": server.udp_port},
            "tcp": {"host": "127.0.0.1", "port": server.tcp_port},
            "unix": {"socket_path": str(server.socket_path)},
        }
        target = targets[protocol]
        destination = SyslogDestination(protocol=protocol, facility="local3", **target)  # type: ignore[arg-type]
        rig = deliver(tmp_path, destination)
        expected = stored(rig)
        assert wait_for(lambda: len(server.lines()) >= len(expected) + 3)
        lines = server.lines()
    events = [x for x in lines if x[5] == "pattern.execute"]
    checkpoints = [x for x in lines if x[5] == "audit.checkpoint"]
    assert len(events) == len(expected) and len(checkpoints) == 3
    for fields, event in zip(events, expected, strict=True):
        version, facility, severity, app, procid, msgid, data, message = fields
        assert (version, facility, severity, app, msgid) == (
            "1",
            "local3",
            "info",
            "bastion",
            "pattern.execute",
        )
        assert procid == str(os.getpid()) and data == "-"
        assert json.loads(message) == event


# --- Splunk HEC and Elasticsearch bulk (a local HTTP receiver) -------------------------------


def test_splunk_hec_wire_format(tmp_path: Path) -> None:
    token = new_secret_token("hec-")
    REGISTRY.add(token)
    with http_receiver() as receiver:
        destination = SplunkHecDestination(
            host="127.0.0.1", port=receiver.port, token=token, index="audit", tls=False
        )
        rig = deliver(tmp_path, destination)
        requests = list(receiver.requests)
    assert {r["path"] for r in requests} == {"/services/collector/event"}
    assert all(r["headers"]["authorization"] == f"Splunk {token}" for r in requests)
    items = [json.loads(line) for r in requests for line in r["body"].decode().splitlines()]
    events = [i for i in items if i["sourcetype"] == "bastion:audit"]
    assert [i["event"] for i in events] == stored(rig)
    assert all(i["index"] == "audit" and i["source"] == "bastion" for i in items)
    assert all(isinstance(i["time"], float) for i in items)
    assert sum(i["sourcetype"] == "bastion:checkpoint" for i in items) == 3
    assert "hec-" not in repr(destination)


def test_splunk_error_is_retried_not_lost(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        answers = iter([(503, b'{"text":"Server is busy","code":9}')])
        receiver.responder = lambda *a: next(answers, (200, b'{"text":"Success","code":0}'))
        destination = SplunkHecDestination(
            host="127.0.0.1", port=receiver.port, token="t" * 12, index=None, tls=False
        )
        spool = Spool(tmp_path / "spool", max_bytes=10**6)
        rig = make_rig("memory://", outbox=SpoolOutbox([spool]))
        rig.fill(2)
        worker = DeliveryWorker(spool, destination)
        worker.step(now=T0)
        assert spool.read_state().last_error == "splunk HEC answered HTTP 503"
        worker.step(now=T0 + timedelta(minutes=10))
    assert spool.read_state().pending == 0 and len(receiver.requests) == 2


def test_elasticsearch_bulk_wire_format(tmp_path: Path) -> None:
    password = new_secret_token("es-")
    REGISTRY.add(password)
    with http_receiver() as receiver:

        def bulk(path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
            actions = body.decode().splitlines()[::2]
            items = [{"create": {"status": 201}} for _ in actions]
            return 200, json.dumps({"errors": False, "items": items}).encode()

        receiver.responder = bulk
        destination = ElasticsearchBulkDestination(
            hosts=[receiver.url + "/es"], index="audit-idx", username="bastion", password=password
        )
        rig = deliver(tmp_path, destination)
        requests = list(receiver.requests)
    assert {r["path"] for r in requests} == {"/es/_bulk"}
    assert all(r["headers"]["content-type"] == "application/x-ndjson" for r in requests)
    assert all(r["headers"]["authorization"].startswith("Basic ") for r in requests)
    lines = [json.loads(x) for r in requests for x in r["body"].decode().splitlines()]
    actions, documents = lines[::2], lines[1::2]
    assert all(set(a) == {"create"} and a["create"]["_index"] == "audit-idx" for a in actions)
    events = [d for d in documents if d["kind"] != "audit.checkpoint"]
    ids = [a["create"]["_id"] for a in actions if not a["create"]["_id"].startswith("checkpoint-")]
    assert ids == [e["eventId"] for e in events]
    expected = stored(rig)
    assert [
        {k: v for k, v in e.items() if k not in ("@timestamp", "kind")} for e in events
    ] == expected
    assert all(r["body"].endswith(b"\n") for r in requests)


def test_elasticsearch_duplicate_on_retry_counts_as_delivered(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        receiver.responder = lambda *a: (
            200,
            b'{"errors":true,"items":[{"create":{"status":409}},{"create":{"status":201}}]}',
        )
        destination = ElasticsearchBulkDestination(hosts=[receiver.url], index="i")
        destination.send([{"eventId": "e1", "timestamp": "2026-03-01T09:00:00.000Z"}] * 2, now=T0)


# --- CloudWatch Logs (moto's server) ---------------------------------------------------------


@pytest.mark.e2e
def test_cloudwatch_put_log_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3  # type: ignore[import-untyped]

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)
    from bastion.backends.audit_sinks.cloudwatch import CloudWatchDestination

    with moto_server(tmp_path) as endpoint:
        destination = CloudWatchDestination(
            log_group="/bastion/audit",
            region="eu-west-1",
            log_stream="node-1",
            endpoint_url=endpoint,
        )
        # CloudWatch takes events of the last 14 days only: record them now.
        rig = deliver(tmp_path, destination, clock=FrozenClock(datetime.now(UTC)))
        client = boto3.client("logs", region_name="eu-west-1", endpoint_url=endpoint)
        got = client.get_log_events(
            logGroupName="/bastion/audit", logStreamName="node-1", startFromHead=True
        )["events"]
    messages = [json.loads(e["message"]) for e in got]
    events = [m for m in messages if "seq" in m and "auditCheckpoint" not in m]
    assert events == stored(rig)
    assert [e["timestamp"] for e in got] == sorted(e["timestamp"] for e in got)
    assert sum("auditCheckpoint" in m for m in messages) == 3
