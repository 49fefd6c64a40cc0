"""Connection counts shared by the worker processes of ``bastion serve --workers N``, so that
``gateway.connections`` caps the server, not each worker (as nginx's ``limit_conn`` zones do).

The serving process creates the table (`connection_table`), a small file in ``/dev/shm`` that
every worker maps. Each worker claims a row of its own and writes only that row: its open
connections, and its connections by client bucket. A client is put in one of `BUCKETS`
buckets by a hash keyed with a secret drawn when the table is made, so no client can choose
to share another's bucket. A reader adds up one cell across the rows; nothing is locked on
the way of a connection. Two consequences, both on the side of refusing:

- workers deciding at the same instant can each admit the last place: the caps hold to
  within one connection per worker;
- two clients that share a bucket share its cap. Only clients holding a cap's worth of
  connections matter, and ``max`` allows at most ``max / perClient`` of them (19 of 8,192
  buckets at the defaults).

A worker that starts takes a free row under an exclusive `fcntl.flock` of the file, and clears
the rows of workers that have ended: a worker that was killed never gave its connections
back, though they ended with it, and uvicorn starts its replacement at once. There are rows
for twice the workers and some more, for the replacements that uvicorn starts before it
retires old workers (SIGHUP) and for workers added by SIGTTIN.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from bastion.gateway.workers import is_live_sibling, shared_directory

BUCKETS = 8192
SPARE_ROWS = 16
_MAGIC = b"BCT1"
_HEADER = struct.Struct("<4sII16s")  # magic, rows, buckets, bucket key
_CELL = 4  # int32 cells: a row is [pid, open, bucket 0, ..., bucket BUCKETS-1]


class Tally(Protocol):
    """Open connections, in all and by client key (`bastion.gateway.connections.client_key`)."""

    def total(self) -> int: ...

    def held(self, key: str) -> int: ...

    def add(self, key: str | None, delta: int) -> None: ...


class LocalTally:
    """This process's connections only (one worker), counted exactly."""

    def __init__(self) -> None:
        self._open = 0
        self._by_client: dict[str, int] = {}

    def total(self) -> int:
        return self._open

    def held(self, key: str) -> int:
        return self._by_client.get(key, 0)

    def add(self, key: str | None, delta: int) -> None:
        self._open = max(self._open + delta, 0)
        if key is None:
            return
        held = self._by_client.get(key, 0) + delta
        if held > 0:
            self._by_client[key] = held
        else:
            self._by_client.pop(key, None)


class TableError(RuntimeError):
    """The shared table cannot be used (not bastion's, or no row is free)."""


@contextlib.contextmanager
def connection_table(workers: int) -> Iterator[Path]:
    """A new table for ``workers`` workers, removed when the block ends."""
    rows = 2 * workers + SPARE_ROWS
    fd, name = tempfile.mkstemp(prefix="bastion-connections-", dir=shared_directory())
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_HEADER.pack(_MAGIC, rows, BUCKETS, secrets.token_bytes(16)))
            file.truncate(_HEADER.size + rows * _row_cells(BUCKETS) * _CELL)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _row_cells(buckets: int) -> int:
    return buckets + 2


class SharedTally:
    """This worker's row of a table made by `connection_table`, and the sums over all rows."""

    def __init__(self, path: Path) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)
        magic, rows, buckets, key = _HEADER.unpack_from(self._map)
        if magic != _MAGIC or len(self._map) != _HEADER.size + rows * _row_cells(buckets) * _CELL:
            raise TableError(f"{path} is not a bastion connection table")
        self._rows: int = rows
        self._buckets: int = buckets
        self._key: bytes = key
        self._cells = memoryview(self._map)[_HEADER.size :].cast("i")
        self._stride = _row_cells(self._buckets)
        self._row = self._claim(path) * self._stride

    def _claim(self, path: Path) -> int:
        """Clear the rows of workers that have ended (killed ones never gave their
        connections back, though those ended with them) and take the first free row."""
        cells, stride = self._cells, self._stride
        empty = memoryview(bytes(stride * _CELL)).cast("i")
        with open(path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            free = []
            for row in range(self._rows):
                start = row * stride
                if not is_live_sibling(cells[start]):
                    cells[start : start + stride] = empty
                    free.append(row)
            if not free:
                raise TableError(f"all {self._rows} rows of the connection table {path} are taken")
            cells[free[0] * stride] = os.getpid()
            return free[0]

    def _bucket(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), key=self._key, digest_size=8).digest()
        return 2 + int.from_bytes(digest, "little") % self._buckets

    def total(self) -> int:
        cells, stride = self._cells, self._stride
        return sum(cells[row * stride + 1] for row in range(self._rows))

    def held(self, key: str) -> int:
        cells, stride, bucket = self._cells, self._stride, self._bucket(key)
        return sum(cells[row * stride + bucket] for row in range(self._rows))

    def add(self, key: str | None, delta: int) -> None:
        cells, row = self._cells, self._row
        cells[row + 1] = max(cells[row + 1] + delta, 0)
        if key is not None:
            bucket = row + self._bucket(key)
            cells[bucket] = max(cells[bucket] + delta, 0)
