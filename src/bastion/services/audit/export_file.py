"""Reading audit export files for offline verification, and refusing every other file.

Two layouts are read, plain or gzipped, as `bastion.services.audit.export` writes them:

- NDJSON, one record a line: an ``auditExport`` header first, ``auditCheckpoint`` records
  and events. The ``file`` destination's NDJSON (events and checkpoints, no header) reads too.
- The JSON document, a line at a time as it is written: the header's keys on the first line,
  then the ``checkpoints``, ``events`` and ``seal`` lists with one element a line (or the whole
  document on one line).

Anything else is a `RequestRejectedError` naming the file and what is wrong: a missing or
unreadable file, an empty one, CSV / syslog / CEF, a line that is not an export record, a JSON
document that ends early, a header or checkpoint with a key twice in one object. Skipping what
does not parse would let a file that is not an export pass as an empty, verified one. An event
with a key twice is read, marked (``duplicate``), for verification to report as a break. Both
layouts are read a line at a time: memory stays flat.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_from_json
from bastion.errors import RequestRejectedError

CHECKPOINT_KEY = "auditCheckpoint"
HEADER_KEY = "auditExport"
DOCUMENT_FORMAT = "bastion-audit-export/1"
SECTIONS = ("checkpoints", "events", "seal")
HEADER_FIELDS = frozenset({"format", "firstSeq", "lastSeq", "exportedAt"})
EVENT_FIELDS = frozenset({"seq", "prevHash", "hash", "eventId"})

_GZIP_MAGIC = b"\x1f\x8b"
_PROBE = 4096  # characters looked at before whole lines are read
_DOCUMENT_START = re.compile(r'\{\s*"format"\s*:')
_UNVERIFIABLE = (
    ("csv", re.compile(r"timestamp,eventId,")),
    ("syslog", re.compile(r"<\d{1,3}>1 ")),
    ("cef", re.compile(r"CEF:\d+\|")),
)

Kind = Literal["header", "checkpoint", "event"]
Line = tuple[int, str, bool]  # number, text without surrounding blanks, ends with a newline


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """A record of an export file; ``duplicate`` is a key its line has twice in one object."""

    kind: Kind
    value: dict[str, Any]
    line: int
    duplicate: str | None = None


@dataclass(frozen=True, slots=True)
class ExportScan:
    """One export file read through: its checkpoints, and the events it holds and declares."""

    path: Path
    checkpoints: tuple[AuditCheckpoint, ...]
    events: int
    first_seq: int | None
    last_seq: int | None
    declared: tuple[int, int] | None  # the header's firstSeq and lastSeq, when it has them


def refuse(path: Path, problem: str) -> RequestRejectedError:
    return RequestRejectedError(f"{path}: {problem}")


def scan_export(path: Path) -> ExportScan:
    """Read the whole file once: its checkpoints parsed, its events counted."""
    checkpoints: list[AuditCheckpoint] = []
    events, first, last, declared = 0, None, None, None
    for record in read_records(path):
        if record.kind == "checkpoint":
            if record.duplicate is not None:
                raise refuse(path, twice(record.line, record.duplicate))
            try:
                checkpoints.append(checkpoint_from_json(record.value[CHECKPOINT_KEY]))
            except ValueError as exc:
                raise refuse(path, f"line {record.line}: a malformed checkpoint: {exc}") from None
        elif record.kind == "header":
            declared = _declared_range(record.value)
        else:
            events += 1
            seq = record.value.get("seq")
            if type(seq) is int:
                first = seq if first is None else first
                last = seq
    return ExportScan(path, tuple(checkpoints), events, first, last, declared)


def exported_events(path: Path) -> Iterator[ExportRecord]:
    for record in read_records(path):
        if record.kind == "event":
            yield record


def read_records(path: Path) -> Iterator[ExportRecord]:
    """Every record of an export file, in order; `RequestRejectedError` at the first problem."""
    lines = _content(path)
    first = next(lines, None)
    if first is None:
        raise refuse(path, "the file is empty, not an audit export")
    if _DOCUMENT_START.match(first[1]):
        yield from _document(path, first, lines)
    else:
        yield from _ndjson(path, first, lines)


def _open(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _content(path: Path) -> Iterator[Line]:
    """The file's lines that are not blank; read errors become one line naming the file.

    The start is looked at before any line is read whole, so a file that is not JSON (even
    one with no newline at all, like ``/dev/zero``) is refused before it fills memory.
    """
    try:
        with _open(path) as handle:
            start = handle.read(_PROBE)
            if start.strip() and not start.lstrip().startswith("{"):
                raise _not_an_export(path, start.lstrip().partition("\n")[0])
            head = io.StringIO(start + handle.readline())
            for number, raw in enumerate(itertools.chain(head, handle), start=1):
                text = raw.strip()
                if text:
                    yield number, text, raw.endswith("\n")
    except UnicodeDecodeError:
        raise refuse(path, "not a json or ndjson audit export (not UTF-8 text)") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise refuse(path, f"the gzip file is damaged or ends early ({exc})") from None
    except OSError as exc:
        raise refuse(path, f"cannot read it: {exc.strerror or exc}") from None


def _not_an_export(path: Path, first_line: str) -> RequestRejectedError:
    for name, pattern in _UNVERIFIABLE:
        if pattern.match(first_line):
            return refuse(
                path,
                f"a {name} audit export, which cannot be verified (only json and ndjson"
                " exports carry the signed checkpoints that verification needs)",
            )
    return refuse(path, "not a json or ndjson audit export (only those can be verified)")


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        raise _DuplicateKeyError(next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1))
    return value


def _loads(text: str) -> tuple[Any, str | None]:
    """The JSON value of ``text`` (None if it is not JSON), and a key that one of its objects
    has twice (None if none).

    RFC 8785 section 3.1: "JCS compliant data MUST also be compatible with I-JSON", and RFC 7493
    section 2.3: "Objects in I-JSON messages MUST NOT have members with duplicate names." Two
    readers of such a line may keep different values, one of them not the value hashed.
    """
    try:
        return json.loads(text, object_pairs_hook=_unique), None
    except _DuplicateKeyError as exc:
        return json.loads(text), exc.key
    except (ValueError, RecursionError):
        return None, None


def twice(number: int, key: str) -> str:
    """The problem of line ``number``: an object in it has ``key`` twice."""
    return f"line {number}: the key {key!r} appears twice in one object (RFC 8785 forbids it)"


def _kind(value: dict[str, Any]) -> Kind | None:
    keys = value.keys()
    if keys == {CHECKPOINT_KEY}:
        return "checkpoint"
    if keys == {HEADER_KEY}:
        return "header"
    if not keys & {CHECKPOINT_KEY, HEADER_KEY} and keys & EVENT_FIELDS:
        return "event"
    return None


def _broken(path: Path, line: Line, problem: str, *, truncated: str) -> RequestRejectedError:
    """``problem`` at ``line``; a last line cut short (no newline) means the file was cut."""
    number, _, complete = line
    if not complete:
        return refuse(path, f"the export ends early ({truncated})")
    return refuse(path, f"line {number}: {problem}")


def _ndjson(path: Path, first: Line, rest: Iterator[Line]) -> Iterator[ExportRecord]:
    for position, line in enumerate(itertools.chain([first], rest)):
        value, duplicate = _loads(line[1])
        if not isinstance(value, dict):
            problem = "not a JSON record (an ndjson export has one a line)"
            if not position:
                problem = "neither an ndjson record nor the start of a json export as written"
            raise _broken(path, line, problem, truncated=f"line {line[0]} is cut short")
        kind = _kind(value)
        if kind is None:
            raise refuse(path, f"line {line[0]}: not an audit event, checkpoint or export header")
        if kind == "header":
            if position:
                raise refuse(path, f"line {line[0]}: an export header after the first record")
            if duplicate is not None:
                raise refuse(path, twice(line[0], duplicate))
            value = _header(path, line[0], value[HEADER_KEY])
        yield ExportRecord(kind, value, line[0], duplicate)


def _header(path: Path, number: int, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(path, f"line {number}: the export header is not a JSON object")
    found = value.get("format")
    if found != DOCUMENT_FORMAT:
        raise refuse(path, f"line {number}: format {found!r} is not {DOCUMENT_FORMAT!r}")
    unknown = sorted(set(value) - HEADER_FIELDS)
    if unknown:
        raise refuse(path, f"line {number}: unexpected keys in the export header: {unknown}")
    for name in ("firstSeq", "lastSeq"):
        if name in value and type(value[name]) is not int:
            raise refuse(path, f"line {number}: the header's {name} is not a number")
    return value


def _declared_range(header: dict[str, Any]) -> tuple[int, int] | None:
    if "firstSeq" in header and "lastSeq" in header:
        return header["firstSeq"], header["lastSeq"]
    return None


def _document(path: Path, first: Line, rest: Iterator[Line]) -> Iterator[ExportRecord]:
    whole, duplicate = _loads(first[1])
    if isinstance(whole, dict):
        if duplicate is not None:  # which element has it is not known: the whole is refused
            raise refuse(path, twice(first[0], duplicate))
        yield from _one_line_document(path, first[0], whole)
    else:
        head, duplicate = _loads(first[1][:-1] + "}") if first[1].endswith(",") else (None, None)
        if not isinstance(head, dict):
            raise _broken(path, first, "not JSON", truncated="truncated JSON")
        if duplicate is not None:
            raise refuse(path, twice(first[0], duplicate))
        yield ExportRecord("header", _header(path, first[0], head), first[0])
        for section in SECTIONS:
            yield from _section(path, section, rest)
    extra = next(rest, None)
    if extra is not None:
        raise refuse(path, f"line {extra[0]}: more after the end of the export")


def _one_line_document(path: Path, number: int, whole: dict[str, Any]) -> Iterator[ExportRecord]:
    header = {key: value for key, value in whole.items() if key not in SECTIONS}
    yield ExportRecord("header", _header(path, number, header), number)
    for section in SECTIONS:
        elements = whole.get(section)
        if not isinstance(elements, list):
            raise refuse(path, f"the export has no {section!r} list")
        for element in elements:
            yield _element(path, number, section, element)


def _section(path: Path, section: str, lines: Iterator[Line]) -> Iterator[ExportRecord]:
    """``"section":[``, one element a line (a comma after all but the last), then ``],``."""
    close = "]}" if section == "seal" else "],"
    line = _next(path, lines)
    opening = "".join(line[1].split())
    if opening == f'"{section}":[{close}':
        return
    if opening != f'"{section}":[':
        raise _broken(path, line, f"expected the {section!r} list", truncated="truncated JSON")
    comma: bool | None = None  # after the last element: None (none yet), its trailing comma
    while True:
        line = _next(path, lines)
        number, text, _ = line
        if text.startswith("]"):
            if "".join(text.split()) == close and comma is not True:
                return
            raise _broken(path, line, f"expected {close!r}", truncated="truncated JSON")
        if comma is False:
            raise _broken(path, line, "a comma is missing", truncated="truncated JSON")
        comma = text.endswith(",")
        value, duplicate = _loads(text[:-1] if comma else text)
        if value is None:
            raise _broken(path, line, "not JSON", truncated="truncated JSON")
        yield _element(path, number, section, value, duplicate)


def _next(path: Path, lines: Iterator[Line]) -> Line:
    line = next(lines, None)
    if line is None:
        raise refuse(path, "the export ends early (truncated JSON)")
    return line


def _element(
    path: Path, number: int, section: str, value: Any, duplicate: str | None = None
) -> ExportRecord:
    kind = _kind(value) if isinstance(value, dict) else None
    wanted: Kind = "event" if section == "events" else "checkpoint"
    if kind != wanted:
        what = "an audit event" if wanted == "event" else "a checkpoint"
        raise refuse(path, f"line {number}: not {what} in the {section!r} list")
    return ExportRecord(wanted, value, number, duplicate)
