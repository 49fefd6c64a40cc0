"""The ``file`` destination: NDJSON lines appended to a file, rotated by size and age.

A rotated file is renamed ``<path>.<UTC time>-<n>`` and, with ``compress``, gzipped to
``<path>.<UTC time>-<n>.gz``; the names sort in rotation order. Files are created 0600.
Lines carry events and checkpoints: the files are a witness for
``bastion audit verify --checkpoints``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from bastion.backends.audit_sinks.base import DeliveryError, Record, record_time
from bastion.core.audit_formats import ascii_json


class FileDestination:
    name = "file"

    def __init__(
        self,
        path: Path,
        *,
        max_size: int | None = None,
        max_age: timedelta | None = None,
        compress: bool = False,
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.max_age = max_age
        self.compress = compress
        self._started: datetime | None = None

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for chunk, first in self._chunks(records):
                self._rotate_if_due(now, incoming=len(chunk))
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "ab") as handle:
                    handle.write(chunk)
                if self._started is None:
                    self._started = record_time(first)
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path.name}: {exc.strerror}") from None

    def _chunks(self, records: Sequence[Record]) -> list[tuple[bytes, Record]]:
        """The batch cut so that no chunk alone passes ``max_size`` (each starts a file)."""
        chunks: list[tuple[bytes, Record]] = []
        lines: list[bytes] = []
        first: Record | None = None
        size = 0
        for record in records:
            line = (ascii_json(dict(record)) + "\n").encode()
            if lines and self.max_size is not None and size + len(line) > self.max_size:
                assert first is not None
                chunks.append((b"".join(lines), first))
                lines, size, first = [], 0, None
            lines.append(line)
            size += len(line)
            first = first or record
        if lines and first is not None:
            chunks.append((b"".join(lines), first))
        return chunks

    def _first_record_time(self) -> datetime | None:
        if self._started is None and self.path.exists():
            with self.path.open("rb") as handle:
                first = handle.readline()
            if first.strip():
                try:
                    self._started = record_time(json.loads(first))
                except (ValueError, KeyError):
                    self._started = None
        return self._started

    def _rotate_if_due(self, now: datetime, *, incoming: int) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        size = self.path.stat().st_size
        too_big = self.max_size is not None and size + incoming > self.max_size
        started = self._first_record_time()
        too_old = self.max_age is not None and started is not None and now - started >= self.max_age
        if too_big or too_old:
            self.rotate(now)

    def rotate(self, now: datetime) -> Path:
        """Close the current file under a time-stamped name (gzipped with ``compress``)."""
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        counter = 0
        while True:  # names sort in rotation order, even within one microsecond
            target = self.path.with_name(f"{self.path.name}.{stamp}-{counter:04d}")
            if not (target.exists() or target.with_name(target.name + ".gz").exists()):
                break
            counter += 1
        os.replace(self.path, target)
        self._started = None
        if self.compress:
            compressed = target.with_name(target.name + ".gz")
            fd = os.open(compressed, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with (
                target.open("rb") as source,
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as sink,
            ):
                shutil.copyfileobj(source, sink)
            target.unlink()
            return compressed
        return target

    def close(self) -> None:
        return None
