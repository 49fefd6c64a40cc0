"""Injection: names with newlines, ANSI escapes, JSON fragments and format metacharacters are
stored as given and exported encoded, one event per line, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import pytest

from bastion.services.audit.export import FORMATS, export

from .conftest import Rig, make_rig

HOSTILE_NAMES = [
    'eve\nforged-line {"action":"auth.login","outcome":"success"}',
    "\x1b[31mred\x1b[0m\x1b]0;title\x07",
    '","outcome":"success","x":"',
    "=cmd|' /C calc'!A0",
    "pipe|equals=back\\slash\r\nCEF:0|fake|header",
    "\u2028line\u2029para\x85nel\x00nul",
]
_RFC5424 = re.compile(r"^<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ - (\{.*\})$")


@pytest.fixture
def hostile(sqlite_url: str) -> Iterator[Rig]:
    rig = make_rig(sqlite_url, every=4)
    for n, name in enumerate(HOSTILE_NAMES):
        rig.append(
            rig.event(
                n,
                actor={"type": "user", "id": name, "userAgent": name},
                request={"method": "GET", "path": "/api/" + name, "requestId": f"req_{n}"},
            )
        )
    yield rig
    rig.storage.close()


def exported(rig: Rig, fmt: str) -> str:
    out = io.StringIO()
    export(
        rig.storage,
        out,
        fmt=fmt,  # type: ignore[arg-type]
        since=None,
        signer=rig.signer,
        signature_valid=rig.signer.verifier().valid,
        now=rig.clock.now(),
    )
    return out.getvalue()


def test_hostile_names_are_stored_exactly(hostile: Rig) -> None:
    with hostile.storage.transaction() as tx:
        stored = [e.actor["id"] for e in tx.audit.iterate()]
    assert stored == HOSTILE_NAMES


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_control_character_reaches_any_format(hostile: Rig, fmt: str) -> None:
    text = exported(hostile, fmt)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]", text)
    assert "\r" not in text


def test_ndjson_is_one_event_per_line_and_round_trips(hostile: Rig) -> None:
    lines = exported(hostile, "ndjson").splitlines()
    events = [json.loads(x) for x in lines if '"seq"' in x and "auditCheckpoint" not in x]
    assert [e["actor"]["id"] for e in events] == HOSTILE_NAMES


def test_json_document_round_trips(hostile: Rig) -> None:
    document = json.loads(exported(hostile, "json"))
    assert [e["actor"]["id"] for e in document["events"]] == HOSTILE_NAMES


def test_csv_is_one_record_per_line_and_defuses_formulas(hostile: Rig) -> None:
    text = exported(hostile, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(text.splitlines()) == len(HOSTILE_NAMES) + 1
    actor_ids = [row[rows[0].index("actorId")] for row in rows[1:]]
    assert actor_ids[3] == "'=cmd|' /C calc'!A0"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "\\n" in actor_ids[0] and "\\u001b" in actor_ids[1]


def test_syslog_lines_are_rfc5424_with_the_event_as_message(hostile: Rig) -> None:
    lines = exported(hostile, "syslog").splitlines()
    assert len(lines) == len(HOSTILE_NAMES)
    for line, name in zip(lines, HOSTILE_NAMES, strict=True):
        match = _RFC5424.match(line)
        assert match, line
        assert line.isascii()
        assert json.loads(match[1])["actor"]["id"] == name


def test_cef_header_and_extension_are_escaped(hostile: Rig) -> None:
    lines = exported(hostile, "cef").splitlines()
    assert len(lines) == len(HOSTILE_NAMES)
    for line in lines:
        header = re.split(r"(?<!\\)\|", line, maxsplit=7)
        assert header[:3] == ["CEF:0", "Bastion", "bastion"]
        assert header[4:7] == ["pattern.execute", "pattern.execute", "3"]
        # Extension values escape "=", so a value can never start another key.
        assert re.findall(r" (\w+)=", " " + header[7])[:3] == ["rt", "act", "outcome"]
    pipe_line = lines[4]
    assert "suser=pipe|equals\\=back\\\\slash\\r\\nCEF:0|fake|header" in pipe_line
