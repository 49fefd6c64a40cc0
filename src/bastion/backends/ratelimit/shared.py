"""`SharedRateLimitStore`: GCRA buckets in a table every worker of one `bastion serve --workers N`
maps, so that without Redis the limits are the server's, not each worker's (as nginx's
``limit_req`` zones are shared by its workers).

The serving process creates the table (`rate_limit_table`, a file in ``/dev/shm`` readable by
its owner only, removed when serving ends). A bucket is a slot of two 64-bit integers: the
bucket key's fingerprint (a BLAKE2b hash keyed with a secret drawn with the table, so no
client can aim at another's slot) and its TAT. A decision takes an exclusive `fcntl.flock` of
the table, reads and charges every bucket of the request, and lets go: the same all-or-none
step, exact under concurrency, as the memory and Redis stores. The clock is the system's
monotonic clock, the same in every process.

A key's slot is found by probing `PROBE` slots from its hash. A bucket whose TAT has passed is
full again, which equals absent, so its slot is free to take. When all `PROBE` slots hold
buckets still refilling (more live clients than the table was made for), the one closest to
full is forgotten, as the memory store forgets such buckets when it grows too large.
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
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bastion.backends.ratelimit.memory import monotonic_micros
from bastion.core.ratelimit import Bucket, BucketState, decide

SLOTS = 131_072  # 2 MiB: as many live buckets as the memory store keeps before it sweeps
PROBE = 32
_MAGIC = b"BRL1"
_HEADER = struct.Struct("<4sI16s")  # magic, slots, fingerprint key
_SLOT = struct.Struct("<Qq")  # fingerprint (0: empty), TAT in microseconds


class RateLimitTableError(RuntimeError):
    """The file is not a rate-limit table bastion made."""


@contextlib.contextmanager
def rate_limit_table(directory: str | None, slots: int = SLOTS) -> Iterator[Path]:
    """A new, empty table in ``directory`` (the temp dir when None), removed at the end."""
    fd, name = tempfile.mkstemp(prefix="bastion-rate-limits-", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_HEADER.pack(_MAGIC, slots, secrets.token_bytes(16)))
            file.truncate(_HEADER.size + slots * _SLOT.size)
        yield path
    finally:
        path.unlink(missing_ok=True)


class SharedRateLimitStore:
    def __init__(self, path: Path, *, now: Callable[[], int] = monotonic_micros) -> None:
        self._file = open(path, "r+b")  # noqa: SIM115 (held for the process's life: the lock)
        self._map = mmap.mmap(self._file.fileno(), 0)
        magic, slots, key = _HEADER.unpack_from(self._map)
        if magic != _MAGIC or len(self._map) != _HEADER.size + slots * _SLOT.size:
            self._map.close()
            self._file.close()
            raise RateLimitTableError(f"{path} is not a bastion rate-limit table")
        self._slots: int = slots
        self._key: bytes = key
        self._now = now
        # flock excludes other processes; threads of this one share its descriptor.
        self._lock = threading.Lock()

    async def acquire(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        return self.acquire_now(buckets)

    def acquire_now(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        fingerprints = [self._fingerprint(bucket.key) for bucket in buckets]
        with self._lock:
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                now = self._now()
                taken: set[int] = set()
                found = [self._find(fingerprint, now, taken) for fingerprint in fingerprints]
                states = decide([tat for _, tat in found], now, buckets)
                if states and states[0].allowed:
                    for fingerprint, (slot, _), state in zip(
                        fingerprints, found, states, strict=True
                    ):
                        _SLOT.pack_into(self._map, self._offset(slot), fingerprint, state.tat)
                return states
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)

    def _fingerprint(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "little") or 1  # 0 marks an empty slot

    def _offset(self, slot: int) -> int:
        return _HEADER.size + slot * _SLOT.size

    def _find(self, fingerprint: int, now: int, taken: set[int]) -> tuple[int, int | None]:
        """(the slot of the key's bucket, its TAT) or, for a bucket not held, (the slot to
        put it in, None): never one of ``taken``, the slots of the request's other buckets."""
        start = fingerprint % self._slots
        free: int | None = None
        closest: int | None = None
        closest_tat = 0
        for step in range(min(PROBE, self._slots)):
            slot = (start + step) % self._slots
            held, tat = _SLOT.unpack_from(self._map, self._offset(slot))
            if held == fingerprint:
                taken.add(slot)
                return slot, (tat if tat > now else None)
            if slot in taken:
                continue
            if held == 0 or tat <= now:
                if free is None:
                    free = slot
                if held == 0:
                    break  # probing never skips an empty slot: the key is not further on
            elif closest is None or tat < closest_tat:
                closest, closest_tat = slot, tat
        chosen = free if free is not None else closest
        if chosen is None:  # only a table with fewer slots than a request has buckets
            raise RateLimitTableError("the rate-limit table has too few slots")
        taken.add(chosen)
        return chosen, None

    async def close(self) -> None:
        self._map.close()
        self._file.close()
