"""Verifying an audit trail: the hash chain, the signed checkpoints, and what they cover.

Events are fed in the order they are stored (or exported); the first problem found is kept
with the sequence number it makes untrustworthy:

- an edited field → that event's seq (its hash no longer matches its content);
- a deleted event → the missing seq; a reordered one → the first seq out of place;
- a log re-hashed from the edit onwards → the first seq after the last checkpoint that still
  matches (a signature cannot be re-made without the key, so the edit lies in between);
- a truncated tail → the first missing seq, when a checkpoint names a later event;
- a start after seq 1 (retention, or an export slice) must be anchored: a valid checkpoint at
  the seq just before it must name its ``prevHash``. A stored trail must also explain it: a
  retention record, itself signed, that removed exactly the events before it (else the oldest
  events were deleted, and the checkpoints that named them with them);
- every valid checkpoint at a seq must match it: a stored one and a shipped copy, say.

Events after the last valid checkpoint are chain-checked but not signed: ``max_unsigned``
says how many may be (a database is sealed every N events; an export is sealed to its end),
and `SealWait` how long (a running bastion seals every T seconds, so a tail left unsealed for
longer lost its checkpoints, or bastion stopped before it could seal them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bastion.core.audit import GENESIS_HASH, format_timestamp
from bastion.core.audit_checkpoint import AuditCheckpoint

# Beyond the checkpoint interval and half of it again (how often the idle sealer looks): for
# clocks that differ between hosts, and a database busy or unreachable for a while.
SEAL_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SealWait:
    """How long the newest events may wait for a checkpoint, judged at ``now``.

    While bastion runs, a checkpoint is due ``interval`` after the last one: the next batch
    seals it, or the idle sealer, which looks every half ``interval``. So no event stays
    unsealed longer than `allowance` after the newest checkpoint (or, with none, after the
    first event), unless the checkpoints after it were removed or bastion stopped before it
    sealed (it seals at start-up and on a graceful stop).
    """

    interval: timedelta
    now: datetime

    @property
    def allowance(self) -> timedelta:
        return self.interval + self.interval / 2 + SEAL_SLACK


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification. ``first_broken_seq`` is None when everything holds."""

    events: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    signed_through: int | None
    unsigned_tail: int
    first_broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


class ChainVerifier:
    """Feed events with `add` (seq, prevHash, stored hash, recomputed hash), then `finish`."""

    def __init__(
        self,
        checkpoints: Iterable[AuditCheckpoint],
        *,
        signature_valid: Callable[[AuditCheckpoint], bool],
        max_unsigned: int | None,
        cut_needs_record: bool,
        wait: SealWait | None = None,
    ) -> None:
        """``cut_needs_record``: a start after seq 1 must be explained by a retention record
        (`retention_cut`), as in a stored trail; an export may start wherever it is anchored.
        ``wait``: how long the unsealed tail may have waited (events are then fed with their
        timestamps)."""
        self._checkpoints: dict[int, set[str]] = {}
        self._signed_times: dict[int, datetime] = {}
        self._bad_signatures: list[AuditCheckpoint] = []
        for checkpoint in sorted(checkpoints, key=lambda c: c.seq):
            if signature_valid(checkpoint):
                self._checkpoints.setdefault(checkpoint.seq, set()).add(checkpoint.head_hash)
                # The latest signature at a seq: the sealer's next one is due after it.
                known = self._signed_times.get(checkpoint.seq)
                if known is None or checkpoint.timestamp > known:
                    self._signed_times[checkpoint.seq] = checkpoint.timestamp
            else:
                self._bad_signatures.append(checkpoint)
        self._max_unsigned = max_unsigned
        self._wait = wait
        # Since when the unsealed run after the newest matched checkpoint (or the first event)
        # has waited, and its first event recorded later than the sealer allows after that.
        self._waiting_since: datetime | None = None
        self._late: tuple[int, datetime] | None = None
        self._cut_needs_record = cut_needs_record
        self._cuts: list[tuple[int, str | None, int]] = []
        self._first_prev_hash = GENESIS_HASH
        self._count = 0
        self._first: int | None = None
        self._last: int | None = None
        self._last_hash = GENESIS_HASH
        self._signed_through: int | None = None
        self._matched = 0
        self._broken: tuple[int, str] | None = None

    def _fail(self, seq: int, reason: str) -> None:
        if self._broken is None:
            self._broken = (seq, reason)

    def reject(self, seq: int, reason: str) -> None:
        """Record a problem found outside the chain (an index column that lies)."""
        self._fail(seq, reason)

    @property
    def failed(self) -> bool:
        return self._broken is not None

    def add(
        self,
        seq: int,
        prev_hash: str,
        stored_hash: str,
        computed_hash: str,
        *,
        timestamp: datetime | None = None,
    ) -> None:
        if self._broken is not None:
            return
        self._count += 1
        if self._first is None:
            self._first, self._first_prev_hash = seq, prev_hash
            self._waiting_since = timestamp
            self._check_start(seq, prev_hash)
        else:
            assert self._last is not None
            expected = self._last + 1
            if seq != expected:
                what = "is missing (deleted)" if seq > expected else "is out of order"
                self._fail(expected, f"event {expected} {what}")
                return
            if prev_hash != self._last_hash:
                self._fail(seq, f"event {seq} does not link to event {self._last}")
                return
        if computed_hash != stored_hash:
            self._fail(seq, f"event {seq} was changed: its content does not match its hash")
            return
        self._last, self._last_hash = seq, stored_hash
        named = self._checkpoints.get(seq)
        if named is not None:
            if named != {stored_hash}:
                since = self._signed_through + 1 if self._signed_through else self._first
                self._fail(
                    since or seq,
                    f"the signed checkpoint at seq {seq} does not match event {seq}: events"
                    f" from seq {since} on were rewritten and re-hashed",
                )
                return
            self._sealed_at(seq)
            self._matched += 1
        elif timestamp is not None:
            self._note_unsealed(seq, timestamp)

    def _sealed_at(self, seq: int) -> None:
        self._signed_through = seq
        self._waiting_since = self._signed_times.get(seq)
        self._late = None

    def _note_unsealed(self, seq: int, timestamp: datetime) -> None:
        """The first event after the newest checkpoint recorded later than a running bastion
        would have left it unsealed (its timestamp is hashed, the checkpoint's signed)."""
        wait, since = self._wait, self._waiting_since
        if wait is None or since is None or self._late is not None:
            return
        if timestamp - since > wait.allowance:
            self._late = (seq, timestamp)

    def _check_start(self, seq: int, prev_hash: str) -> None:
        if seq == 1:
            if prev_hash != GENESIS_HASH:
                self._fail(1, "event 1 does not start the chain")
            return
        if self._checkpoints.get(seq - 1) != {prev_hash}:
            self._fail(
                seq, f"the log starts at seq {seq} without a signed checkpoint at seq {seq - 1}"
            )
        else:
            self._sealed_at(seq - 1)
            self._matched += 1

    def retention_cut(self, through_seq: int, last_hash: str | None, *, record_seq: int) -> None:
        """The retention record at ``record_seq`` says it removed the events through
        ``through_seq``, the last of which had ``last_hash`` (None in records older than
        that field: the anchor checkpoint, checked at the start, pins the hash then)."""
        self._cuts.append((through_seq, last_hash, record_seq))

    def _check_cut(self) -> None:
        """A start after seq 1 is a cut that a signed retention record must name exactly.

        Unsigned, a record is no proof: anyone who can write the table can append one at the
        head. An earlier record that names an earlier cut vouches for the events it removed.
        """
        first = self._first
        if first is None or first == 1:
            return
        signed = self._signed_through or 0
        if any(
            seq == first - 1 and digest in (None, self._first_prev_hash) and record <= signed
            for seq, digest, record in self._cuts
        ):
            return
        since = max((seq for seq, _, _ in self._cuts if seq < first - 1), default=0) + 1
        self._fail(
            since,
            f"the log starts at seq {first} but no signed audit.retention record explains"
            f" the removal of seq {since}-{first - 1} (deleted)",
        )

    def finish(self) -> VerifyReport:
        if self._broken is None and self._bad_signatures:
            bad = self._bad_signatures[0]
            self._fail(bad.seq, f"the checkpoint at seq {bad.seq} has no valid signature")
        if self._broken is None and self._cut_needs_record:
            self._check_cut()
        if self._broken is None:
            beyond = [s for s in self._checkpoints if self._last is None or s > self._last]
            if beyond:
                end = self._last or 0
                self._fail(
                    end + 1,
                    f"the log ends at seq {end} but a signed checkpoint names seq {max(beyond)}"
                    " (truncated)",
                )
        unsigned = self._unsigned()
        limit = self._max_unsigned
        if self._broken is None and limit is not None and unsigned > limit:
            start = (self._signed_through or (self._first or 1) - 1) + 1
            self._fail(
                start, f"{unsigned} events from seq {start} are not covered by a signed checkpoint"
            )
        if self._broken is None and unsigned:
            self._check_wait()
        broken_seq, reason = self._broken if self._broken else (None, "")
        return VerifyReport(
            events=self._count,
            first_seq=self._first,
            last_seq=self._last,
            checkpoints=self._matched,
            signed_through=self._signed_through,
            unsigned_tail=unsigned,
            first_broken_seq=broken_seq,
            reason=reason,
        )

    def _check_wait(self) -> None:
        """An unsealed tail older than a running bastion leaves one: it lost its checkpoints,
        or bastion stopped before sealing it (see `SealWait`)."""
        wait, since = self._wait, self._waiting_since
        if wait is None or since is None:
            return
        signed = self._signed_through
        start = (signed or (self._first or 1) - 1) + 1
        if signed is not None:
            anchor = f"the newest checkpoint (seq {signed}, signed {format_timestamp(since)})"
            removed = f"the checkpoints after seq {signed} were removed"
        else:
            anchor = f"the first event ({format_timestamp(since)})"
            removed = "its checkpoints were removed"
        limit = _duration(wait.allowance)
        if wait.now - since > wait.allowance:
            self._fail(
                start,
                f"events from seq {start} on have waited for a checkpoint more than {limit}"
                f" since {anchor}, longer than a running bastion leaves them: {removed}, or"
                " bastion stopped before sealing them (after a crash, start bastion again: it"
                " seals the tail at start-up)",
            )
        elif self._late is not None:
            seq, moment = self._late
            self._fail(
                seq,
                f"event {seq} was recorded at {format_timestamp(moment)}, more than {limit}"
                f" after {anchor}, yet no checkpoint seals it: a running bastion seals sooner,"
                f" so {removed}",
            )

    def _unsigned(self) -> int:
        if self._last is None:
            return 0
        if self._signed_through is None:
            return self._count
        return max(self._last - self._signed_through, 0)


def _duration(delta: timedelta) -> str:
    """``6m30s``, ``90s``: a limit as a person reads it."""
    seconds = int(delta.total_seconds())
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest}s"
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
