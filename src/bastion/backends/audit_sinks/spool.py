"""A bounded on-disk queue of audit records (JSON lines) for one destination.

Any process that commits audit events appends to it (under an advisory lock); the delivery
thread of ``bastion serve`` reads from the oldest segment, and advances a cursor once the
destination has accepted a batch. When the spool holds ``max_bytes``, new records are
dropped and counted: the database keeps every event, the spool only feeds a destination, so
a destination that is down for long never fills the disk nor blocks a request. A record the
destination can never take is dropped and counted the same way, so it cannot block the
records after it.

Layout: ``seg-<n>.ndjson`` segments, ``state.json`` (cursor and counters, rewritten
atomically), ``lock``. Files are created 0600: records are audit events.

A writer counts its records, and notes where they are to go, before it writes them. A writer
that dies mid-write (killed, or the disk full) leaves part of them: the next writer, or the
next reader to start, finishes the torn line with a newline (so it is refused on its own as
not JSON instead of swallowing the next record) and counts the records that never reached the
file as dropped, so ``enqueued`` always equals delivered + dropped + pending.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

SEGMENT_BYTES = 4 * 1024 * 1024
_PREFIX, _SUFFIX = "seg-", ".ndjson"


@dataclass
class SpoolState:
    """The cursor (segment number and byte offset) and the counters shown by status."""

    segment: int = 0
    offset: int = 0
    enqueued: int = 0
    delivered: int = 0
    dropped: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    last_error_at: str = ""
    last_delivery_at: str = ""
    next_attempt_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    writing: list[int] = field(default_factory=list)
    """The last append as ``[segment, start, end, records]``: where its bytes go, how many."""

    @property
    def pending(self) -> int:
        return max(self.enqueued - self.delivered - self.dropped, 0)


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Lines of one segment from byte ``start``; ``ends[i]`` is the offset past line ``i``."""

    records: list[str]
    segment: int
    start: int
    ends: list[int]

    @property
    def end_offset(self) -> int:
        return self.ends[-1]

    def part(self, first: int, stop: int) -> SpoolBatch:
        """Lines ``first`` to ``stop - 1`` (what to commit or drop when a batch splits)."""
        start = self.ends[first - 1] if first else self.start
        return SpoolBatch(self.records[first:stop], self.segment, start, self.ends[first:stop])


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._reader_fd: int | None = None
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def try_become_reader(self) -> bool:
        """Take the reader's lock for this process's lifetime; False if another holds it.

        Only one delivery thread (of all the workers sharing the spool) may read it.
        """
        if self._reader_fd is not None:
            return True
        fd = os.open(self.directory / "reader.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._reader_fd = fd
        with self._locked():  # a writer that died before this reader started
            state = self.read_state()
            if self._finish_torn_write(state):
                self._write_state(state)
        return True

    def release_reader(self) -> None:
        if self._reader_fd is not None:
            os.close(self._reader_fd)
            self._reader_fd = None

    def _segments(self) -> list[int]:
        numbers = []
        for path in self.directory.iterdir():
            name = path.name
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                numbers.append(int(name[len(_PREFIX) : -len(_SUFFIX)]))
        return sorted(numbers)

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{_PREFIX}{number:012d}{_SUFFIX}"

    def read_state(self) -> SpoolState:
        try:
            data = json.loads((self.directory / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return SpoolState()
        known = {k: v for k, v in data.items() if k in SpoolState.__dataclass_fields__}
        return SpoolState(**known)

    def _write_state(self, state: SpoolState) -> None:
        target = self.directory / "state.json"
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(state), handle)
        os.replace(temporary, target)

    def size(self) -> int:
        return sum(self._segment_path(n).stat().st_size for n in self._segments())

    def append(self, records: Sequence[str]) -> int:
        """Queue one JSON line per record; returns how many were dropped for want of room."""
        if not records:
            return 0
        data = "".join(record + "\n" for record in records).encode("utf-8")
        with self._locked():
            state = self.read_state()
            self._finish_torn_write(state)
            segments = self._segments()
            state.enqueued += len(records)
            if self.size() + len(data) > self.max_bytes:
                state.dropped += len(records)
                self._write_state(state)
                return len(records)
            number = segments[-1] if segments else max(state.segment, 1)
            path = self._segment_path(number)
            start = path.stat().st_size if path.exists() else 0
            if start >= SEGMENT_BYTES:
                number, start = number + 1, 0
                path = self._segment_path(number)
            state.writing = [number, start, start + len(data), len(records)]
            self._write_state(state)  # counted before written: see the module's doc
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as handle:
                handle.write(data)
        return 0

    def _finish_torn_write(self, state: SpoolState) -> bool:
        """Under the writers' lock no append is under way, so a last line without its newline
        was cut short by a writer that died: end it, and count the records of that append
        that never reached the file as dropped. True if ``state`` changed."""
        writing, state.writing = state.writing, []
        segments = self._segments()
        if not segments:
            return bool(writing)
        path = self._segment_path(segments[-1])
        size = path.stat().st_size
        last = bool(writing) and writing[0] == segments[-1]
        if not size or (last and size == writing[2]):
            return bool(writing)  # the last append is whole: it ends with a newline
        with path.open("rb+") as handle:
            if last and size < writing[2]:
                handle.seek(writing[1])
                landed = handle.read()
                torn = 1 if landed and not landed.endswith(b"\n") else 0
                state.dropped += writing[3] - landed.count(b"\n") - torn
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        return bool(writing)

    def peek(self, *, max_records: int, max_bytes: int = 1024 * 1024) -> SpoolBatch | None:
        """The next complete lines after the cursor, or None if there is none yet.

        ``max_bytes`` bounds a batch, never a line: a first line longer than that is read
        whole and travels alone, so no record, however long, can hold the cursor back.
        """
        state = self.read_state()
        for number in self._segments():
            if number < state.segment:
                continue
            start = state.offset if number == state.segment else 0
            with self._segment_path(number).open("rb") as handle:
                handle.seek(start)
                batch = self._read_lines(handle, number, start, max_records, max_bytes)
            if batch is not None:
                return batch
        return None

    def _read_lines(
        self, handle: BinaryIO, number: int, start: int, max_records: int, max_bytes: int
    ) -> SpoolBatch | None:
        records: list[str] = []
        ends: list[int] = []
        offset = start
        while len(records) < max_records:
            if records:
                room = max_bytes - (offset - start)
                line = handle.readline(room) if room > 0 else b""
            else:
                line = handle.readline()
                if line and not line.endswith(b"\n"):
                    line = self._settled_line(handle, start)
            if not line.endswith(b"\n") and (records or not line or self._is_newest(number)):
                break  # the batch is full, the segment ends, or a line is still being written
            records.append(line.removesuffix(b"\n").decode("utf-8", errors="replace"))
            offset += len(line)
            ends.append(offset)
        return SpoolBatch(records, number, start, ends) if records else None

    def _settled_line(self, handle: BinaryIO, start: int) -> bytes:
        """The line at ``start`` read again under the writers' lock, so not half written.

        Writers append whole lines under the lock: a line still without its newline was cut
        short by a writer that died. In an older segment nothing will ever finish it, so it
        is delivered as it is (and refused as not JSON, so counted, never skipped unseen).
        """
        with self._locked():
            handle.seek(start)
            return handle.readline()

    def _is_newest(self, number: int) -> bool:
        segments = self._segments()
        return not segments or number == segments[-1]

    def commit(self, batch: SpoolBatch, *, at: str) -> None:
        """The destination took ``batch``: move the cursor past it, drop read segments."""
        with self._locked():
            state = self._advance(batch)
            state.delivered += len(batch.records)
            state.consecutive_failures = 0
            state.last_delivery_at = at
            state.next_attempt_at = ""
            self._write_state(state)

    def drop(self, batch: SpoolBatch) -> None:
        """The destination can never take ``batch``: move the cursor past it, count it dropped."""
        with self._locked():
            state = self._advance(batch)
            state.dropped += len(batch.records)
            self._write_state(state)

    def _advance(self, batch: SpoolBatch) -> SpoolState:
        """The state with its cursor past ``batch``; segments read to the end are removed."""
        state = self.read_state()
        state.segment, state.offset = batch.segment, batch.end_offset
        for number in self._segments():
            path = self._segment_path(number)
            done = number < batch.segment or (
                number == batch.segment and path.stat().st_size == batch.end_offset
            )
            if done and number != self._segments()[-1]:
                path.unlink()
        return state

    def record_failure(self, reason: str, *, at: str, retry_at: str) -> int:
        """Count a failed attempt; returns the number of failures in a row."""
        with self._locked():
            state = self.read_state()
            state.failures += 1
            state.consecutive_failures += 1
            state.last_error, state.last_error_at = reason, at
            state.next_attempt_at = retry_at
            self._write_state(state)
            return state.consecutive_failures
