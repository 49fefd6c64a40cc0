"""Each destination's wire format, checked by its real receiver or the standard stand-in:
the file (rotation by size and age, gzip), rsyslog over UDP, TCP and a unix socket, a local
HTTP receiver for Splunk HEC and the Elasticsearch bulk API, moto for CloudWatch Logs."""

from __future__ import annotations

import gzip
import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.backends.audit_sinks import DeliveryWorker, Destination, Spool, SpoolOutbox
from bastion.backends.audit_sinks import syslog as syslog_module
from bastion.backends.audit_sinks.file import FileDestination
from bastion.backends.audit_sinks.http import ElasticsearchBulkDestination, SplunkHecDestination
from bastion.backends.audit_sinks.syslog import MAX_MESSAGE_BYTES, SyslogDestination
from bastion.core.audit_formats import TRUNCATED_MARK
from bastion.crypto.keys import new_secret_token

from .conftest import T0, FrozenClock, Rig, make_rig
from .receivers import Rsyslog, free_port, http_receiver, moto_server, rsyslog, wait_for
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


HUGE_ACTOR = {"type": "anonymous", "id": None, "ip": "10.0.0.9", "userAgent": "u" * 1_100_000}


def drain_with_huge_event(
    tmp_path: Path, destination: Destination, *, clock: FrozenClock | None = None
) -> Spool:
    """Spool an event carrying a 1.1 MB client header between ordinary ones, and deliver."""
    spool = Spool(tmp_path / "spool" / destination.name, max_bytes=10**8)
    rig = make_rig("memory://", every=1000, outbox=SpoolOutbox([spool]), clock=clock)
    rig.fill(1)
    rig.append(rig.event(2, actor=HUGE_ACTOR))
    rig.fill(2)
    worker = DeliveryWorker(spool, destination)
    for _ in range(10):  # bounded: a record retried for ever would spin here
        worker.step(now=rig.clock.now())
        if spool.read_state().pending == 0:
            break
    return spool


def syslog_targets(server: Rsyslog) -> dict[str, dict[str, Any]]:
    return {
        "udp": {"host": "127.0.0.1", "port": server.udp_port},
        "tcp": {"host": "127.0.0.1", "port": server.tcp_port},
        "unix": {"socket_path": str(server.socket_path)},
    }


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
        target = syslog_targets(server)[protocol]
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


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["udp", "tcp", "unix"])
def test_syslog_oversized_event_is_truncated_not_retried_forever(
    tmp_path: Path, protocol: str
) -> None:
    """Without its details the event was still 1.1 MB: a datagram over 65,507 bytes
    (EMSGSIZE) retried for ever, blocking every later event. Now it is cut to fit."""
    with rsyslog(tmp_path / "rsyslog") as server:
        target = syslog_targets(server)[protocol]
        destination = SyslogDestination(protocol=protocol, **target)  # type: ignore[arg-type]
        spool = drain_with_huge_event(tmp_path, destination)
        assert wait_for(lambda: sum(x[5] == "pattern.execute" for x in server.lines()) >= 4)
        lines = server.lines()
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 0)
    events = [x for x in lines if x[5] == "pattern.execute"]
    assert [x[0] for x in events] == ["1"] * 4  # the RFC 5424 header is whole
    cut = events[1][7]
    assert cut.startswith('{"timestamp":') and cut.endswith(TRUNCATED_MARK)
    assert len(cut) < MAX_MESSAGE_BYTES
    assert [json.loads(x[7])["seq"] for x in events if x is not events[1]] == [1, 3, 4]


@pytest.mark.e2e
def test_syslog_datagram_too_long_is_dropped_and_counted_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A message no datagram can carry is a permanent error: that event is dropped, counted
    and logged with its seq, and the events after it are delivered."""
    monkeypatch.setattr(syslog_module, "MAX_MESSAGE_BYTES", 200_000)  # over UDP's 65,507
    with rsyslog(tmp_path / "rsyslog") as server:
        destination = SyslogDestination(protocol="udp", host="127.0.0.1", port=server.udp_port)
        with caplog.at_level(logging.WARNING, logger="bastion.audit.delivery"):
            spool = drain_with_huge_event(tmp_path, destination)
        assert wait_for(lambda: sum(x[5] == "pattern.execute" for x in server.lines()) >= 3)
        events = [x for x in server.lines() if x[5] == "pattern.execute"]
    assert [json.loads(x[7])["seq"] for x in events] == [1, 3, 4]
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 1)
    assert any("event seq 2 dropped for syslog" in r.getMessage() for r in caplog.records)


@pytest.mark.e2e
def test_syslog_record_that_is_not_an_event_is_dropped_not_retried(tmp_path: Path) -> None:
    with rsyslog(tmp_path / "rsyslog") as server:
        destination = SyslogDestination(protocol="udp", host="127.0.0.1", port=server.udp_port)
        spool = Spool(tmp_path / "spool", max_bytes=10**6)
        rig = make_rig("memory://", every=1000, outbox=SpoolOutbox([spool]))
        rig.fill(1)
        spool.append([json.dumps({"seq": 99, "action": "not.an.event"})])
        rig.fill(1)
        worker = DeliveryWorker(spool, destination)
        for _ in range(5):
            worker.step(now=T0)
        assert wait_for(lambda: sum(x[5] == "pattern.execute" for x in server.lines()) >= 2)
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 1)


def test_syslog_receiver_down_is_retried_not_dropped(tmp_path: Path) -> None:
    """Refused connections are transient: the batch stays, retried with backoff."""
    destination = SyslogDestination(protocol="tcp", host="127.0.0.1", port=free_port())
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    rig = make_rig("memory://", every=1000, outbox=SpoolOutbox([spool]))
    rig.fill(2)
    worker = DeliveryWorker(spool, destination)
    worker.step(now=T0)
    worker.step(now=T0 + timedelta(hours=1))
    state = spool.read_state()
    assert (state.consecutive_failures, state.dropped, state.delivered) == (2, 0, 0)
    assert "Connection refused" in state.last_error and state.pending == 3


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


def test_http_413_for_a_record_alone_drops_it_and_delivers_the_rest(tmp_path: Path) -> None:
    """A receiver's body limit that one record alone passes can never be met: that record
    is dropped and counted; a batch of several gets smaller batches instead."""
    with http_receiver() as receiver:
        receiver.responder = lambda path, headers, body: (
            (413, b'{"text":"Content too large","code":27}')
            if len(body) > 1_000_000
            else (200, b'{"text":"Success","code":0}')
        )
        destination = SplunkHecDestination(
            host="127.0.0.1", port=receiver.port, token="t" * 12, index=None, tls=False
        )
        spool = drain_with_huge_event(tmp_path, destination)
        items = [
            json.loads(line)
            for r in receiver.requests
            if len(r["body"]) <= 1_000_000
            for line in r["body"].decode().splitlines()
        ]
    assert [i["event"]["seq"] for i in items if "seq" in i["event"]] == [1, 3, 4]
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 1)


def test_http_413_to_a_batch_halves_the_batches_and_loses_nothing(tmp_path: Path) -> None:
    """A receiver whose body limit holds a few events but not the 500 of a full batch."""
    with http_receiver() as receiver:
        receiver.responder = lambda path, headers, body: (
            (413, b'{"text":"Content too large","code":27}')
            if body.count(b"\n") > 6
            else (200, b'{"text":"Success","code":0}')
        )
        destination = SplunkHecDestination(
            host="127.0.0.1", port=receiver.port, token="t" * 12, index=None, tls=False
        )
        spool = Spool(tmp_path / "spool" / destination.name, max_bytes=10**7)
        rig = make_rig("memory://", every=1000, outbox=SpoolOutbox([spool]))
        rig.fill(40)
        worker = DeliveryWorker(spool, destination, batch_size=64)
        for _ in range(50):  # bounded
            worker.step(now=rig.clock.now())
            if spool.read_state().pending == 0:
                break
        accepted = [
            json.loads(line)["event"]
            for r in receiver.requests
            if r["body"].count(b"\n") <= 6
            for line in r["body"].decode().splitlines()
        ]
    assert [e["seq"] for e in accepted if "seq" in e] == list(range(1, 41))
    assert 3 <= worker.batch_limit <= 6  # halved until a batch fits, no further
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 0)


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


def aws_testing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's credential chain, pointed at moto's fake account."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)


@pytest.mark.e2e
def test_cloudwatch_put_log_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3  # type: ignore[import-untyped]

    aws_testing_env(monkeypatch)
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


@pytest.mark.e2e
def test_cloudwatch_event_over_1mib_is_dropped_and_the_rest_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudWatch takes no event over 1 MiB: retrying one would block the stream for good."""
    import boto3

    aws_testing_env(monkeypatch)
    from bastion.backends.audit_sinks.cloudwatch import CloudWatchDestination

    with moto_server(tmp_path) as endpoint:
        destination = CloudWatchDestination(
            log_group="/bastion/audit", region="eu-west-1", log_stream="n", endpoint_url=endpoint
        )
        spool = drain_with_huge_event(tmp_path, destination, clock=FrozenClock(datetime.now(UTC)))
        client = boto3.client("logs", region_name="eu-west-1", endpoint_url=endpoint)
        got = client.get_log_events(
            logGroupName="/bastion/audit", logStreamName="n", startFromHead=True
        )["events"]
    messages = [json.loads(e["message"]) for e in got]
    assert [m["seq"] for m in messages if "seq" in m] == [1, 3, 4]
    state = spool.read_state()
    assert (state.pending, state.failures, state.dropped) == (0, 0, 1)
