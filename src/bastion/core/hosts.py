"""Which host names bastion answers for (``gateway.allowedHosts``).

Bastion passes the request's ``Host`` to the upstream as ``X-Forwarded-Host``, and upstreams
build absolute links from it (a password-reset mail, a redirect): a request naming a host the
deployment does not serve is refused before it reaches anything (RFC 9110 section 15.5.20,
421 Misdirected Request), as Django's ``ALLOWED_HOSTS`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bastion.core.netrules import parse_address

# A DNS name: labels of letters, digits and hyphens (underscores too: service names use them).
_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")


def host_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an entry of ``gateway.allowedHosts``, or None."""
    if pattern == "*":
        return "leave gateway.allowedHosts empty to answer every host"
    if ":" in pattern.strip("[]") and parse_address(pattern.strip("[]")) is None:
        return "must be a host name or an IP address, without a port"
    name = pattern.removeprefix("*.")
    if parse_address(name.strip("[]")) is not None:
        return None if name == pattern else "a wildcard names DNS names only, not addresses"
    if not _NAME.fullmatch(name.lower().rstrip(".")):
        return "must be a host name (example.com), *. and a host name, or an IP address"
    return None


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """Hosts named exactly, and ``*.example.com`` (any name under example.com, not itself).
    None configured: every host is answered."""

    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str]) -> AllowedHosts:
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in patterns:
            if pattern.startswith("*."):
                suffixes.append("." + _normal(pattern[2:]))
            else:
                exact.add(_normal(pattern))
        return cls(frozenset(exact), tuple(suffixes))

    @property
    def active(self) -> bool:
        return bool(self.exact or self.suffixes)

    def permits(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` value (``host[:port]``, already checked to be
        one) is answered. A request without one (HTTP/1.0) forwards no host and is."""
        if not self.active or host is None:
            return True
        name = _normal(_without_port(host))
        return name in self.exact or name.endswith(self.suffixes)


def _without_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.partition(":")[0]


def _normal(name: str) -> str:
    """Lower case, no trailing dot, brackets off, an IP address in its one spelling."""
    name = name.strip("[]").lower().rstrip(".")
    address = parse_address(name)
    return name if address is None else str(address)
