"""Forward-auth: ``<prefix>/verify`` answers a proxy in front of the upstream (nginx
``auth_request``, Traefik ``forwardAuth``, Envoy ``ext_authz`` over HTTP, Caddy
``forward_auth``) whether the original request may pass.

The original request is read only from a trusted proxy (``gateway.trustedProxies``):

- nginx: ``X-Original-URI`` and ``X-Original-Method``;
- Traefik / Caddy: ``X-Forwarded-Uri`` and ``X-Forwarded-Method``;
- Envoy: the original path appended to the check path (``<prefix>/verify/api/x?q``) with the
  original method.

Proxies pass the client's own headers along, so a client can add one of these forms next to the
one its proxy sets: when the forms present disagree, the request is denied. An untrusted peer,
a missing or non-canonical original request, is a deny.

Answers: 200 with identity headers, 401, 403, 429 (Retry-After). A malformed original request
is 403 here (400 would be a 500 at nginx). Only an infrastructure failure (storage, audit,
rate-limit store) is 503, which the proxy also turns into a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.paths import NonCanonicalPathError, canonical_path
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.gateway.headers import Headers

DENY_STATUSES = frozenset({401, 403, 429})
# A proxy that cannot pass a 429 through (nginx turns it into 500) asks for another status.
RATE_LIMIT_STATUS_HEADER = b"x-bastion-rate-limit-status"


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    method: str
    path: str  # canonical, decoded once
    raw_path: str


def original_request(
    *, method: str, suffix: str | None, query: bytes, headers: Headers, trusted: bool
) -> OriginalRequest:
    """The request the proxy is asking about; `BastionError` (a deny) when it is unclear."""
    if not trusted:
        raise AuthorizationError(("forward-auth request from a peer not in trustedProxies",))
    uris = _values(headers, b"x-original-uri") | _values(headers, b"x-forwarded-uri")
    methods = _values(headers, b"x-original-method") | _values(headers, b"x-forwarded-method")
    if suffix:
        uris.add(suffix + ("?" + query.decode("latin-1") if query else ""))
        methods.add(method)
    if len(uris) != 1 or len(methods) != 1:
        problem = "missing" if not uris or not methods else "conflicting"
        raise AuthorizationError((f"forward-auth request with {problem} original request",))
    uri, original_method = uris.pop(), methods.pop().upper()
    raw_path = uri.split("?", 1)[0]
    try:
        path = canonical_path(raw_path.encode("latin-1"))
    except (NonCanonicalPathError, UnicodeEncodeError) as exc:
        raise RequestRejectedError(str(exc)) from None
    if not original_method.isalpha() or not original_method.isascii():
        raise RequestRejectedError("original method is not an HTTP method")
    return OriginalRequest(original_method, path, raw_path)


def _values(headers: Headers, name: bytes) -> set[str]:
    return {v.decode("latin-1").strip() for n, v in headers if n == name}


def deny_status(status: int, headers: Headers) -> int:
    """The status a deny is sent with: 401 / 403 / 429 stay, other client errors are 403."""
    if status == 429:
        wanted = _values(headers, RATE_LIMIT_STATUS_HEADER)
        if wanted in ({"401"}, {"403"}):
            return int(wanted.pop())
        return 429
    if status in DENY_STATUSES or status >= 500:
        return status
    return 403
