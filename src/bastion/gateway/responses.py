"""Response headers: security headers on every response, and CORS from ``gateway.cors``.

Bastion's own responses get the whole set. Proxied responses keep the upstream's values and get
bastion's where the upstream set none; ``frame-ancestors`` is added as a separate
Content-Security-Policy, which browsers enforce together with any the upstream sent (the
stricter wins). HSTS is sent only on responses served over TLS (RFC 6797 section 7.2).
When CORS is on, bastion answers preflights itself and owns every ``Access-Control-*`` header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.gateway.headers import Headers

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HeaderPolicy:
    hsts: bytes | None = b"max-age=31536000; includeSubDomains"
    referrer_policy: bytes = b"no-referrer"
    frame_ancestors: bytes = b"frame-ancestors 'none'"
    frame_options: bytes | None = b"DENY"

    @classmethod
    def build(
        cls,
        *,
        hsts_max_age: int | None,
        include_sub_domains: bool,
        preload: bool,
        referrer_policy: str,
        frame_ancestors: Sequence[str],
    ) -> HeaderPolicy:
        hsts = None
        if hsts_max_age is not None:
            hsts = f"max-age={hsts_max_age}"
            hsts += "; includeSubDomains" if include_sub_domains else ""
            hsts += "; preload" if preload else ""
        options = {"'none'": b"DENY", "'self'": b"SAMEORIGIN"}.get(" ".join(frame_ancestors))
        return cls(
            hsts=hsts.encode() if hsts else None,
            referrer_policy=referrer_policy.encode(),
            frame_ancestors=("frame-ancestors " + " ".join(frame_ancestors)).encode(),
            frame_options=options,
        )

    def defaults(self, *, https: bool) -> Headers:
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", self.referrer_policy),
        ]
        if self.frame_options is not None:
            headers.append((b"x-frame-options", self.frame_options))
        if https and self.hsts is not None:
            headers.append((b"strict-transport-security", self.hsts))
        return headers

    def own(self, *, https: bool) -> Headers:
        """For responses bastion writes itself."""
        return [*self.defaults(https=https), (b"content-security-policy", self.frame_ancestors)]

    def merged(self, upstream: Iterable[tuple[bytes, bytes]], *, https: bool) -> Headers:
        """The upstream's headers plus bastion's where the upstream set none."""
        headers = list(upstream)
        present = {name.lower() for name, _ in headers}
        headers += [(n, v) for n, v in self.defaults(https=https) if n not in present]
        headers.append((b"content-security-policy", self.frame_ancestors))
        return headers


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str] = frozenset()
    methods: tuple[str, ...] = ()
    headers: frozenset[str] = frozenset()
    expose: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int = 600

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        if not origin or not self.origins:
            return False
        return "*" in self.origins or origin.lower() in self.origins

    def is_preflight(self, method: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        if not self.enabled or method != "OPTIONS":
            return False
        names = {name for name, _ in headers}
        return b"origin" in names and b"access-control-request-method" in names

    def preflight(self, origin: str | None, method: str | None, asked: str | None) -> Headers:
        """Headers that grant the preflight; empty when it is refused."""
        if not self.allows(origin) or method is None or method.strip() not in self.methods:
            return []
        wanted = [h.strip().lower() for h in (asked or "").split(",") if h.strip()]
        if any(h not in self.headers for h in wanted):
            return []
        return [
            *self._origin_headers(origin or ""),
            (b"access-control-allow-methods", ", ".join(self.methods).encode()),
            (b"access-control-allow-headers", ", ".join(sorted(self.headers)).encode()),
            (b"access-control-max-age", str(self.max_age).encode()),
        ]

    def actual(self, origin: str | None) -> Headers:
        """Headers for a cross-origin response the browser may read (empty when not allowed)."""
        if not self.allows(origin):
            return [(b"vary", b"Origin")] if self.enabled else []
        headers = self._origin_headers(origin or "")
        if self.expose:
            headers.append((b"access-control-expose-headers", ", ".join(self.expose).encode()))
        return headers

    def _origin_headers(self, origin: str) -> Headers:
        value = b"*" if "*" in self.origins and not self.credentials else origin.encode("latin-1")
        headers = [(b"access-control-allow-origin", value), (b"vary", b"Origin")]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def strip_upstream(self, headers: Iterable[tuple[bytes, bytes]]) -> Headers:
        if not self.enabled:
            return list(headers)
        return [(n, v) for n, v in headers if not n.lower().startswith(b"access-control-")]


async def send_body(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
