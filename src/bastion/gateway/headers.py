"""Header hygiene at the edge: identity headers clients must never set, hop-by-hop headers
(RFC 9110 section 7.6.1), and the client address as seen through trusted proxies only.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from bastion.crypto.identity import IdentitySigner
from bastion.services.access import Identity
from bastion.services.clock import Clock

Headers = list[tuple[bytes, bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names compared after folding: lower case, "_" → "-", surrounding white space removed, so that
# `X_Bastion_Principal`, `x-bastion-principal ` and the like all count.
_IDENTITY_PREFIXES = ("x-bastion-", "x-auth-request-", "x-forwarded-", "x-original-", "x-remote-")
_IDENTITY_NAMES = frozenset(
    {
        "remote-user",
        "remote-email",
        "remote-groups",
        "remote-name",
        "x-user",
        "x-email",
        "x-real-ip",
        "x-client-ip",
        "forwarded",
        "x-webauth-user",
        "x-credential-username",
        "x-consumer-username",
        "x-jwt-assertion",
    }
)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def fold_name(name: bytes) -> str:
    return name.decode("latin-1").strip().lower().replace("_", "-")


def is_identity_header(name: bytes) -> bool:
    folded = fold_name(name)
    return folded in _IDENTITY_NAMES or folded.startswith(_IDENTITY_PREFIXES)


def connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names a sender declared hop-by-hop through ``Connection``."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return frozenset(listed)


def strip_for_upstream(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Client headers minus identity spellings, hop-by-hop headers and Host."""
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_listed(headers) | {b"host"}
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in dropped and not is_identity_header(name)
    ]


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_listed(headers)
    return [(n, v) for n, v in headers if n.lower() not in dropped]


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    if peer is None or not trusted:
        return False
    address = _address(peer)
    return address is not None and any(address in network for network in trusted)


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A parsed IP address (None if ``text`` is not one); peers repeat, so parses are cached."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(
    peer: str | None, headers: Iterable[tuple[bytes, bytes]], trusted: Sequence[Network]
) -> str | None:
    """The client IP: the peer, unless the peer is a trusted proxy that says otherwise.

    Walks ``X-Forwarded-For`` from the right, skipping trusted hops; the first untrusted address
    is the client. Malformed values make the client unknown (None), so IP-conditioned rules
    fail closed.
    """
    if not is_trusted(peer, trusted):
        return peer
    values = [v for n, v in headers if n.lower() == b"x-forwarded-for"]
    if not values:
        return peer
    hops = [h.strip() for h in b",".join(values).decode("latin-1").split(",")]
    for hop in reversed(hops):
        if _address(hop) is None:
            return None
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def identity_headers(identity: Identity, signer: IdentitySigner, clock: Clock) -> Headers:
    """The headers that tell the upstream who is calling, with the signed assertion."""
    principal = identity.principal
    roles = ",".join(identity.roles)
    claims = {
        "sub": principal.name,
        "tenant": identity.tenant,
        "roles": roles,
        "kind": principal.kind.value,
        "credential": identity.credential_id,
    }
    assertion = signer.assertion(claims, now=clock.now(), key=tuple(claims.values()))
    return [
        (b"x-bastion-principal", header_safe(principal.name)),
        (b"x-bastion-tenant", header_safe(identity.tenant)),
        (b"x-bastion-roles", header_safe(roles)),
        (b"x-bastion-identity", assertion.encode()),
    ]


@functools.lru_cache(maxsize=4096)
def header_safe(value: str) -> bytes:
    """Header-safe text: non-ASCII characters are percent-encoded (UTF-8)."""
    return quote(value, safe="@.+-_~!$&'()*,;=:/ ").encode("ascii")
