"""How many connections ``bastion serve`` holds open (all its workers together): in all, and
from one client.

Every open connection costs a file descriptor and some memory for as long as it lasts, and
the request-head and keep-alive timeouts only bound each one: without a cap, one host that
opens connections faster than they time out fills the process's descriptor table, and then
nobody's connection is accepted. `gateway.connections` sets both caps (``max`` in all,
``perClient`` from one address; an IPv6 client is counted by its /64, which one host is
commonly given whole: `bastion.core.netrules.client_key`, as the per-client rate limit
counts). The addresses in ``gateway.trustedProxies`` are not capped per client: many clients
reach bastion through each of them. A WebSocket counts as the connection it
was upgraded from, for as long as it stays open.

The counts are kept by a `Tally`: this process's own, or with ``--workers N`` one shared by
the workers (`bastion.gateway.connection_table`), so that the caps are the server's. A
connection over a cap is not counted; the HTTP protocol answers its first request with a
refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.netrules import Network, client_key
from bastion.gateway.connection_table import LocalTally, Tally
from bastion.gateway.headers import is_trusted

REPORT_EVERY = 60.0
"""Seconds between two log lines about refused connections: a flood must not flood the log."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_open: int = 10_000
    per_client: int | None = 512
    exempt: tuple[Network, ...] = ()


class ConnectionCounter:
    """The connections open, by client (this process's, or every worker's with a shared
    ``tally``). Used from the event loop only."""

    def __init__(self, limits: ConnectionLimits, tally: Tally | None = None) -> None:
        self.limits = limits
        self._tally = tally or LocalTally()
        self._refused_since_report = 0
        self._reported_at = float("-inf")

    @property
    def open(self) -> int:
        return self._tally.total()

    def _capped_key(self, peer: str | None) -> str | None:
        if self.limits.per_client is None:
            return None
        if is_trusted(peer, self.limits.exempt):
            return None
        return client_key(peer)

    def admit(self, peer: str | None) -> str | None:
        """Count a new connection from ``peer``; None when it is admitted, else why it is not
        (``"max"`` or ``"per_client"``), and then nothing is counted."""
        tally = self._tally
        if tally.total() >= self.limits.max_open:
            return "max"
        key, per_client = self._capped_key(peer), self.limits.per_client
        if key is not None and per_client is not None and tally.held(key) >= per_client:
            return "per_client"
        tally.add(key, 1)
        return None

    def refused(self, now: float) -> int | None:
        """Note a connection `admit` refused at ``now`` (monotonic seconds). Returns how many
        were refused since the last report when one is due (the first, then one a minute)."""
        self._refused_since_report += 1
        if now - self._reported_at < REPORT_EVERY:
            return None
        count, self._refused_since_report = self._refused_since_report, 0
        self._reported_at = now
        return count

    def release(self, peer: str | None) -> None:
        """A connection `admit` admitted from ``peer`` ended."""
        self._tally.add(self._capped_key(peer), -1)

    def held_by(self, peer: str | None) -> int:
        """Connections open from ``peer``'s client (its /64 for IPv6); 0 when uncapped."""
        key = self._capped_key(peer)
        return self._tally.held(key) if key is not None else 0
