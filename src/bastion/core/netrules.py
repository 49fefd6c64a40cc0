"""Network rules: IP allowlists over IPv4 and IPv6 CIDRs, failing closed on an unknown client, and
what one client is when its connections and requests are counted."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is counted by its /64: one host is commonly given a whole /64 and can pick a
new address in it for every request."""


def parse_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``text``, or None when it is absent or not an IP address.

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) is read as the IPv4 address, so that an
    IPv4 range matches a dual-stack socket's view of the same client.
    """
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(text: str | None) -> str | None:
    """What a client address is counted as, by the connection caps and the per-client rate
    limit alike: the IPv4 address, or the /64 of an IPv6 one (an IPv4-mapped IPv6 address
    counts as its IPv4 address); None when absent or not an IP address (a unix socket)."""
    address = parse_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return None if address is None else str(address)


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Clients from ``networks`` are allowed; an empty allowlist is "no rule" (allows all).

    An unknown client (no address, or one that does not parse) never matches a rule: an
    allowlist is a condition on the address, and a condition that cannot be checked is false.
    """

    networks: tuple[Network, ...] = ()
    source: str = ""

    @classmethod
    def of(cls, cidrs: Iterable[str | Network], *, source: str = "") -> Allowlist:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs), source)

    @property
    def active(self) -> bool:
        return bool(self.networks)

    def permits(self, client: str | None) -> bool:
        if not self.networks:
            return True
        address = parse_address(client)
        if address is None:
            return False
        return any(address in network for network in self.networks)
