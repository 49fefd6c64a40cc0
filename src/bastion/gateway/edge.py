"""The request pipeline as one pure ASGI application (no BaseHTTPMiddleware: bodies stream).

canonical path → internal endpoints → credential → access decision (off the event loop) →
forward with identity headers → audit event (before the response starts) → response.
Every failure on the way is a deny with a problem+json body; nothing is forwarded unaudited.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bastion.core.ids import new_id
from bastion.core.paths import NonCanonicalPathError, canonical_path
from bastion.crypto.identity import IdentitySigner
from bastion.errors import (
    AuditUnavailableError,
    AuthenticationError,
    BastionError,
    RequestRejectedError,
    StorageError,
    UpstreamError,
)
from bastion.gateway import problems
from bastion.gateway.headers import Headers, Network, client_address, is_trusted, strip_for_upstream
from bastion.gateway.proxy import UpstreamProxy
from bastion.services.access import AccessService, Identity, RequestFacts, Verdict, request_event
from bastion.services.audit import AuditSink
from bastion.services.clock import Clock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("bastion.gateway")

SECURITY_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    prefix: str
    trusted_proxies: tuple[Network, ...]
    default_tenant: str


class Edge:
    """The gateway ASGI app. Wired by `bastion.gateway.app.build_app`."""

    def __init__(
        self,
        *,
        settings: EdgeSettings,
        access: AccessService,
        audit: AuditSink,
        proxy: UpstreamProxy | None,
        signer: IdentitySigner,
        clock: Clock,
        ready_check: Callable[[], None],
        on_shutdown: Callable[[], None] = lambda: None,
        admin_api: ASGIApp | None = None,
    ) -> None:
        self._settings = settings
        self._access = access
        self._audit = audit
        self._proxy = proxy
        self._signer = signer
        self._clock = clock
        self._ready_check = ready_check
        self._on_shutdown = on_shutdown
        self._admin_api = admin_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._audit.start()
                    if self._proxy is not None:
                        await self._proxy.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._proxy is not None:
                    await self._proxy.stop()
                await self._audit.stop()
                self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_id("req")
        headers: Headers = list(scope.get("headers", []))
        peer = scope["client"][0] if scope.get("client") else None
        client_ip = client_address(peer, headers, self._settings.trusted_proxies)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        method = scope["method"]
        try:
            path = canonical_path(raw_path)
        except NonCanonicalPathError as exc:
            facts = RequestFacts(
                method,
                raw_path.decode("latin-1"),
                None,
                client_ip,
                _header(headers, b"user-agent"),
                request_id,
            )
            verdict = Verdict(facts, None, None, RequestRejectedError(str(exc)))
            await self._deny(verdict, send, detail=str(exc))
            return
        prefix = self._settings.prefix
        if path == "/.well-known/jwks.json":
            await _send_json(send, 200, self._signer.jwks())
            return
        if path.startswith(prefix + "/api/") and self._admin_api is not None:
            # The admin API authenticates and authorizes every call itself (same engine).
            strip = len(prefix) + len("/api")
            mounted = dict(
                scope,
                root_path=scope.get("root_path", "") + prefix + "/api",
                path=path[strip:],
                raw_path=raw_path[strip:],
            )
            await self._admin_api(mounted, receive, send)
            return
        if path.startswith(prefix + "/"):
            await self._internal(path[len(prefix) :], send)
            return
        facts = RequestFacts(
            method=method,
            path=path,
            credential=None,
            client_ip=client_ip,
            user_agent=_header(headers, b"user-agent"),
            request_id=request_id,
        )
        try:
            facts = RequestFacts(
                method, path, _credential(headers), client_ip, facts.user_agent, request_id
            )
        except AuthenticationError as exc:
            await self._deny(Verdict(facts, None, None, exc), send)
            return
        verdict = await asyncio.to_thread(self._access.check, facts)
        if not verdict.allowed:
            await self._deny(verdict, send)
            return
        await self._forward(scope, receive, send, verdict, headers, peer)

    async def _internal(self, subpath: str, send: Send) -> None:
        if subpath == "/health":
            await _send_json(send, 200, {"status": "ok"})
        elif subpath == "/ready":
            try:
                await asyncio.to_thread(self._ready_check)
            except StorageError:
                await _send_json(send, 503, {"status": "unavailable", "storage": "down"})
                return
            await _send_json(send, 200, {"status": "ready"})
        else:
            await _send_json(
                send,
                404,
                {"status": 404, "title": "Not found"},
                content_type=problems.PROBLEM_CONTENT_TYPE,
            )

    async def _deny(self, verdict: Verdict, send: Send, *, detail: str | None = None) -> None:
        assert verdict.error is not None
        status, _ = problems.status_for(verdict.error)
        error: BastionError = verdict.error
        try:
            await self._audit.record(self._event(verdict, status))
        except AuditUnavailableError as exc:
            error, detail = exc, None
            status, _ = problems.status_for(exc)
        body = problems.problem_body(error, request_id=verdict.facts.request_id, detail=detail)
        await _send(send, status, problems.response_headers(status), body)

    def _event(self, verdict: Verdict, status: int, **extra: Any) -> Any:
        return request_event(
            verdict,
            status=status,
            now=self._clock.now(),
            default_tenant=self._settings.default_tenant,
            extra=extra or None,
        )

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        verdict: Verdict,
        headers: Headers,
        peer: str | None,
    ) -> None:
        if self._proxy is None:
            error = UpstreamError("no upstream is configured (gateway.upstream)")
            await self._deny(Verdict(verdict.facts, verdict.match, verdict.identity, error), send)
            return
        upstream_headers = self._upstream_headers(scope, headers, verdict, peer)
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target_str = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        body = _request_body(receive) if _has_body(headers) else None
        try:
            async with self._proxy.request(
                method=verdict.facts.method, target=target_str, headers=upstream_headers, body=body
            ) as response:
                try:
                    await self._audit.record(self._event(verdict, response.status))
                except AuditUnavailableError as exc:
                    await _send(
                        send,
                        503,
                        problems.response_headers(503),
                        problems.problem_body(exc, request_id=verdict.facts.request_id),
                    )
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status,
                        "headers": [
                            *response.headers,
                            (b"x-bastion-request-id", verdict.facts.request_id.encode()),
                        ],
                    }
                )
                async for chunk in response.body():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamError as exc:
            failed = Verdict(verdict.facts, verdict.match, verdict.identity, exc, verdict.reasons)
            await self._deny(failed, send)

    def _upstream_headers(
        self, scope: Scope, headers: Headers, verdict: Verdict, peer: str | None
    ) -> Headers:
        identity = verdict.identity
        # The credential was for bastion; the upstream gets the identity headers instead.
        out = [
            (n, v)
            for n, v in strip_for_upstream(headers)
            if n.lower() not in (b"authorization", b"x-api-key")
        ]
        trusted = is_trusted(peer, self._settings.trusted_proxies)
        forwarded_for = peer or ""
        if trusted:
            prior = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-for"]
            forwarded_for = ", ".join([*prior, forwarded_for]) if prior else forwarded_for
        host = _header(headers, b"host") or ""
        out += [
            (b"x-forwarded-for", forwarded_for.encode("latin-1")),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", host.encode("latin-1")),
            (b"x-bastion-request-id", verdict.facts.request_id.encode()),
        ]
        if identity is not None:
            out += _identity_headers(identity, self._signer, self._clock)
        return out


def _identity_headers(identity: Identity, signer: IdentitySigner, clock: Clock) -> Headers:
    principal = identity.principal
    assertion = signer.assertion(
        {
            "sub": principal.name,
            "tenant": identity.tenant,
            "roles": ",".join(identity.roles),
            "kind": principal.kind.value,
            "credential": identity.credential_id,
        },
        now=clock.now(),
    )
    return [
        (b"x-bastion-principal", _ascii(principal.name)),
        (b"x-bastion-tenant", _ascii(identity.tenant)),
        (b"x-bastion-roles", _ascii(",".join(identity.roles))),
        (b"x-bastion-identity", assertion.encode()),
    ]


def _ascii(value: str) -> bytes:
    """Header-safe text: non-ASCII characters are percent-encoded (UTF-8)."""
    return quote(value, safe="@.+-_~!$&'()*,;=:/ ").encode("ascii")


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _credential(headers: Headers) -> str | None:
    """The API key from ``Authorization: Bearer`` or ``X-API-Key``; two different ones → 401."""
    found: set[str] = set()
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError("unsupported_authorization_scheme")
            found.add(token.strip())
        elif name == b"x-api-key":
            found.add(value.decode("latin-1").strip())
    if len(found) > 1:
        raise AuthenticationError("ambiguous_credential")
    return found.pop() if found else None


def _has_body(headers: Headers) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and value.strip() not in (b"0", b""):
            return True
    return False


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise UpstreamError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, *SECURITY_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, payload: Any, *, content_type: bytes = b"application/json"
) -> None:
    await _send(
        send,
        status,
        [(b"content-type", content_type), (b"cache-control", b"no-store")],
        json.dumps(payload).encode(),
    )
