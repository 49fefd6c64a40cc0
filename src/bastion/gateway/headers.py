"""Header hygiene at the edge: reserved headers clients must never set (identity, client address,
method and path overrides), hop-by-hop headers (RFC 9110 section 7.6.1), the Host (one, and a
valid host[:port]), and the client address as seen through trusted proxies only.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import string
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from bastion.core.netrules import parse_address
from bastion.core.rbac import role_name_breaks_rule
from bastion.crypto.identity import IdentitySigner
from bastion.errors import RequestRejectedError, UnsupportedTransferCodingError
from bastion.services.access import Identity
from bastion.services.clock import Clock

Headers = list[tuple[bytes, bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
log = logging.getLogger("bastion.gateway")

# Headers only bastion (or a trusted proxy in front of it) may set: who is calling, from which
# address, with which certificate, and which method and path the upstream should act on. A
# client's copy would let it claim an identity, dodge an IP rule, or have the upstream run a
# method or path other than the one bastion authorised (`X-HTTP-Method-Override: DELETE` on an
# allowed GET). Names are compared after folding: lower case, "_" → "-", surrounding white space
# removed, so that `X_Bastion_Principal`, `x-bastion-principal ` and the like all count.
_RESERVED_PREFIXES = (
    "x-bastion-",
    "x-auth-request-",  # oauth2-proxy
    "x-forwarded-",
    "x-original-",  # X-Original-URI, X-Original-URL, X-Original-Method
    "x-remote-",
    "x-authenticated-",  # Kong, Squid: -User, -Userid, -Groups, -Scope
    "x-consumer-",  # Kong: -ID, -Username, -Custom-ID, -Groups
    "x-credential-",  # Kong: -Identifier, -Username
    "x-ms-client-principal",  # Azure App Service: itself, -Name, -ID, -IDP
    "x-goog-authenticated-",  # Google IAP: -User-Email, -User-ID
    "x-amzn-oidc-",  # AWS ALB: -Data, -Identity, -Accesstoken
    "cf-access-",  # Cloudflare Access: -Authenticated-User-Email, -Jwt-Assertion
    "x-client-cert",  # and X-Client-Cert-* (certificate forwarded by a TLS terminator)
    "x-ssl-client-",  # -Cert, -S-DN, -I-DN, -Verify
    "ssl-client-",  # -Cert, -S-DN, -Verify
)
_RESERVED_NAMES = frozenset(
    {
        # identity
        "remote-user",
        "remote-email",
        "remote-groups",
        "remote-name",
        "x-user",
        "x-email",
        "x-auth-user",
        "x-proxy-user",
        "x-userinfo",
        "x-webauth-user",
        "x-jwt-assertion",
        "x-goog-iap-jwt-assertion",
        "x-arr-clientcert",
        # client address
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "cf-connecting-ipv6",
        "fastly-client-ip",
        "x-cluster-client-ip",
        # method and path overrides
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-rewrite-url",
    }
)
# RFC 3986 "unreserved": a reg-name without percent-escapes (two spellings of one name) and
# without sub-delims (`,` would make X-Forwarded-Host a list, `;` a Forwarded parameter).
_HOST_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")
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


@functools.lru_cache(maxsize=1024)
def is_reserved_header(name: bytes) -> bool:
    """Whether a client-sent header claims what only bastion may say (see `_RESERVED_NAMES`).

    Header names repeat from request to request, so answers are cached.
    """
    folded = fold_name(name)
    return folded in _RESERVED_NAMES or folded.startswith(_RESERVED_PREFIXES)


def connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names a sender declared hop-by-hop through ``Connection``."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return frozenset(listed)


def strip_for_upstream(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Client headers minus reserved spellings, hop-by-hop headers and Host."""
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_listed(headers) | {b"host"}
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in dropped and not is_reserved_header(name)
    ]


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_listed(headers)
    return [(n, v) for n, v in headers if n.lower() not in dropped]


def request_host(headers: Iterable[tuple[bytes, bytes]], *, http_version: str) -> bytes | None:
    """The request's Host (None for an HTTP/1.0 request without one); `RequestRejectedError`
    (400) when it is missing, repeated or not a host[:port].

    RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    HTTP/1.1 request message that lacks a Host header field and to any request message that
    contains more than one Host header field line or a Host header field with an invalid field
    value." The upstream builds links from X-Forwarded-Host, so an odd one is refused, not passed.
    """
    hosts = [value for name, value in headers if name.lower() == b"host"]
    if len(hosts) > 1:
        raise RequestRejectedError("request has more than one Host header")
    if not hosts:
        if http_version == "1.0":
            return None
        raise RequestRejectedError("request has no Host header")
    if not is_valid_host(hosts[0]):
        raise RequestRejectedError("Host header is not a valid host[:port]")
    return hosts[0]


def check_body_headers(headers: Iterable[tuple[bytes, bytes]], *, http_version: str) -> None:
    """The headers that say what the body is must have one reading.

    `UnsupportedTransferCodingError` (501) unless the only transfer coding is ``chunked``: the
    server has already undone the chunking, and a coding such as ``gzip`` before it would reach
    the upstream as bytes labelled nothing (RFC 9112 section 6.1). `RequestRejectedError` (400)
    for more than one ``Content-Type`` (two lines, or one value listing two): bastion checks one
    against ``allowedContentTypes`` and for JSON, and the upstream may read another; and for
    ``Transfer-Encoding`` in an HTTP/1.0 request, whose framing RFC 9112 section 6.1 says to
    treat as faulty (an HTTP/1.0 hop in front reads the body by its ``Content-Length``, or to
    the end, not by chunks).
    """
    content_types = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-type":
            # Two lines, or one listing two types (RFC 9110 section 5.3: the same thing).
            content_types += 1 + _unquoted_commas(value)
            if content_types > 1:
                raise RequestRejectedError("request has more than one Content-Type header")
        elif lowered == b"transfer-encoding" and http_version == "1.0":
            raise RequestRejectedError("an HTTP/1.0 request cannot have a Transfer-Encoding")
        elif lowered == b"transfer-encoding" and value.strip().lower() != b"chunked":
            raise UnsupportedTransferCodingError(
                "only the chunked transfer coding is supported, not "
                + repr(value.decode("latin-1"))
            )


def _unquoted_commas(value: bytes) -> int:
    """Commas outside quoted strings: ``application/json, text/plain`` lists two media types,
    where ``multipart/form-data; boundary="a,b"`` has one."""
    commas, quoted, escaped = 0, False, False
    for byte in value:
        if escaped:
            escaped = False
        elif quoted and byte == 0x5C:  # backslash
            escaped = True
        elif byte == 0x22:  # quote
            quoted = not quoted
        elif byte == 0x2C and not quoted:
            commas += 1
    return commas


@functools.lru_cache(maxsize=1024)
def is_valid_host(value: bytes) -> bool:
    """``host[:port]`` per RFC 3986 section 3.2.2, strictly: a non-empty reg-name of unreserved
    characters (RFC 9110 section 4.2.1: an http URI's host is never empty), a dotted IPv4
    address (a reg-name too), or a bracketed IPv6 address without zone; a port of 1 to 5 digits
    up to 65535. Hosts repeat from request to request, so answers are cached."""
    text = value.decode("latin-1")
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return False
        return _is_ipv6(address) and (not rest or _is_port(rest[1:]))
    name, colon, port = text.partition(":")
    return bool(name) and _HOST_NAME_CHARS.issuperset(name) and (not colon or _is_port(port))


def _is_ipv6(text: str) -> bool:
    if "%" in text:  # a zone id (RFC 6874) names an interface of the client, not a host
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65535


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    if peer is None or not trusted:
        return False
    address = _address(peer)
    return address is not None and any(address in network for network in trusted)


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A parsed IP address (None if ``text`` is not one), an IPv4-mapped one as its IPv4
    address as for the allowlists (`parse_address`); peers repeat, so parses are cached."""
    return parse_address(text)


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
    """The headers that tell the upstream who is calling, with the signed assertion.

    A delegated request (an RFC 8693 token: an agent acting for a user) also names the actor
    and its roles, as X-Bastion-Actor / X-Bastion-Actor-Roles and as the assertion's ``act``
    claim: bastion allowed the request because both hold its permission, and an upstream that
    decides for itself must intersect the two as well, never act on the user's roles alone.
    """
    principal = identity.principal
    roles = listed_roles(identity.roles)
    claims: dict[str, object] = {
        "sub": principal.name,
        "tenant": identity.tenant,
        "roles": roles,
        "kind": principal.kind.value,
        "credential": identity.credential_id,
    }
    key: tuple[object, ...] = tuple(claims.values())
    headers = [
        (b"x-bastion-principal", header_safe(principal.name)),
        (b"x-bastion-tenant", header_safe(identity.tenant)),
        (b"x-bastion-roles", header_safe(roles)),
    ]
    acting = identity.acting
    if acting is not None:
        acting_roles = listed_roles(identity.acting_roles)
        claims["act"] = {"sub": acting.name, "kind": acting.kind.value, "roles": acting_roles}
        key = (*key, acting.name, acting.kind.value, acting_roles)
        headers += [
            (b"x-bastion-actor", header_safe(acting.name)),
            (b"x-bastion-actor-roles", header_safe(acting_roles)),
        ]
    assertion = signer.assertion(claims, now=clock.now(), key=key)
    headers.append((b"x-bastion-identity", assertion.encode()))
    return headers


@functools.lru_cache(maxsize=4096)
def listed_roles(roles: tuple[str, ...]) -> str:
    """``roles`` as the upstream gets them (``X-Bastion-Roles``, ``X-Bastion-Actor-Roles`` and
    the assertion's claims): one comma-separated list. A role whose name holds a comma or
    white space (`bastion.core.rbac.ROLE_NAME_RULE`: one stored before such names were
    refused) is left out, since ``reader,admin`` would read as ``admin``, and logged (once
    while this list is cached, not on every request)."""
    listed: list[str] = []
    for role in roles:
        if not role_name_breaks_rule(role):
            listed.append(role)
            continue
        log.warning(
            "role %r is left out of the identity headers: its name holds a comma or white "
            "space. Define the role under another name and move its bindings to it",
            role,
        )
    return ",".join(listed)


@functools.lru_cache(maxsize=4096)
def header_safe(value: str) -> bytes:
    """Header-safe text: non-ASCII characters are percent-encoded (UTF-8)."""
    return quote(value, safe="@.+-_~!$&'()*,;=:/ ").encode("ascii")
