"""The gateway as one pure ASGI application (no BaseHTTPMiddleware: bodies stream).

Dispatch: forward-auth (``<prefix>/verify``, `verify.ForwardAuthEndpoint`, which answers every
refusal as a deny) → the stages before anything is answered (`pipeline.Gate.screen`: IP
allowlist, global limit, then Host, transfer coding and canonical path, 400 on any ambiguity,
421 for a Host ``gateway.allowedHosts`` does not name) → bastion's own endpoints under the
prefix (health, ready, metrics, the admin API) and the JWKS → CORS preflight
(`preflight.PreflightEndpoint`) → the decision (`pipeline.Gate.admit`) → forward to the
upstream (`forward.Forwarder`) or relay a WebSocket (`websocket.WebSocketRelay`). Every request
that is decided produces exactly one audit event; every failure on the way is a deny with a
problem+json body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bastion.core.hosts import AllowedHosts
from bastion.core.ids import new_id
from bastion.core.netrules import Allowlist
from bastion.core.paths import NonCanonicalPathError, canonical_path
from bastion.crypto.identity import IdentitySigner
from bastion.errors import (
    BastionError,
    MisdirectedRequestError,
    NotFoundError,
    RequestRejectedError,
    StorageError,
)
from bastion.gateway import problems
from bastion.gateway.connection_table import Tally
from bastion.gateway.connections import ConnectionCounter, ConnectionLimits
from bastion.gateway.forward import Forwarder
from bastion.gateway.headers import (
    Headers,
    Network,
    check_body_headers,
    client_address,
    request_host,
)
from bastion.gateway.limits import RateLimiter
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.network import CLIENT_IP_STATE
from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.own_apps import ADMIN_API_MAX_BODY, OwnApps
from bastion.gateway.pipeline import Gate
from bastion.gateway.preflight import PreflightEndpoint
from bastion.gateway.proxy import UpstreamProxy
from bastion.gateway.responses import CorsPolicy, HeaderPolicy
from bastion.gateway.validation import BodyPolicy, body_deadline, has_body, header
from bastion.gateway.verify import ForwardAuthEndpoint
from bastion.gateway.websocket import WebSocketRelay, handshake_send
from bastion.services.access import AccessService
from bastion.services.audit import AuditSink
from bastion.services.clock import Clock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Bastion's own endpoints under the prefix that only answer GET and HEAD: the probes, which
# `security.network.ipAllowlist` does not cover (load balancers probe from anywhere).
_READ_ONLY = frozenset({"/health", "/ready", "/metrics"})


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    prefix: str
    trusted_proxies: tuple[Network, ...]
    default_tenant: str
    allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    allowlist: Allowlist = field(default_factory=Allowlist)
    body: BodyPolicy = field(default_factory=BodyPolicy)
    headers: HeaderPolicy = field(default_factory=HeaderPolicy)
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    websocket_recheck: float = 30.0
    request_head_timeout: float = 30.0
    request_body_timeout: float = 60.0
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)


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
        auth_app: ASGIApp | None = None,
        auth_paths: frozenset[str] = frozenset(),
        limiter: RateLimiter | None = None,
        metrics: GatewayMetrics | None = None,
        connection_tally: Tally | None = None,
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._proxy = proxy
        self._ready_check = ready_check
        self._on_shutdown = on_shutdown
        self._admin_api = admin_api
        self._auth_app = auth_app
        self._auth_paths = auth_paths
        self._limiter = limiter
        # Read by the HTTP protocol of `bastion serve` (bastion.gateway.server).
        self.request_head_timeout = settings.request_head_timeout
        self.metrics = metrics or GatewayMetrics()
        self.connections = ConnectionCounter(settings.connections, connection_tally)
        self.metrics.track_connections(lambda: self.connections.open)
        self._gate = Gate(access=access, limiter=limiter, allowlist=settings.allowlist, clock=clock)
        self._outcomes = Outcomes(
            audit=audit,
            clock=clock,
            default_tenant=settings.default_tenant,
            headers=settings.headers,
            cors=settings.cors,
            metrics=self.metrics,
        )
        self._own_apps = OwnApps(self._outcomes)
        self._own_root = settings.prefix + "/"
        self._probe_paths = frozenset(settings.prefix + p for p in _READ_ONLY)
        self._forwarder = Forwarder(
            proxy=proxy,
            outcomes=self._outcomes,
            signer=signer,
            clock=clock,
            trusted_proxies=settings.trusted_proxies,
            body=settings.body,
        )
        self._verify = ForwardAuthEndpoint(
            prefix=settings.prefix,
            trusted_proxies=settings.trusted_proxies,
            gate=self._gate,
            outcomes=self._outcomes,
            signer=signer,
            clock=clock,
            metrics=self.metrics,
        )
        self._preflight = PreflightEndpoint(
            cors=settings.cors, gate=self._gate, outcomes=self._outcomes
        )
        self._websockets = WebSocketRelay(
            proxy=proxy,
            outcomes=self._outcomes,
            forwarder=self._forwarder,
            gate=self._gate,
            prefix=settings.prefix,
            max_message=settings.body.max_size if settings.body.enabled else None,
            recheck=settings.websocket_recheck,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

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
                if self._limiter is not None:
                    await self._limiter.close()
                await self._audit.stop()
                self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _inbound(self, scope: Scope) -> Inbound:
        headers: Headers = list(scope.get("headers", []))
        peer = scope["client"][0] if scope.get("client") else None
        return Inbound(
            scope=scope,
            request_id=new_id("req"),
            method=scope.get("method", "GET"),
            headers=headers,
            peer=peer,
            client_ip=client_address(peer, headers, self._settings.trusted_proxies),
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""),
            https=scope.get("scheme") in ("https", "wss"),
            origin=header(headers, b"origin"),
            user_agent=header(headers, b"user-agent"),
        )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        inbound = self._inbound(scope)
        if has_body(inbound.headers):
            receive = body_deadline(receive, self._settings.request_body_timeout)
        raw_path = inbound.raw_path
        suffix = self._verify.suffix(raw_path)
        if suffix is not None:
            await self._verify.answer(inbound, suffix or None, send)
            return
        path = await self._enter(inbound, send)
        if path is None:
            return
        prefix = self._settings.prefix
        if path in self._auth_paths and self._auth_app is not None:
            # Login, OAuth tokens and the /.well-known documents (bastion.gateway.auth).
            auth_scope = dict(scope, path=path, state=_own_state(scope, inbound))
            await self._own_apps.serve(self._auth_app, auth_scope, inbound, receive, send)
            return
        if path.startswith(prefix + "/api/") and self._admin_api is not None:
            # The admin API authenticates and authorizes every call itself (same engine).
            strip = len(prefix) + len("/api")
            mounted = dict(
                scope,
                root_path=scope.get("root_path", "") + prefix + "/api",
                path=path[strip:],
                raw_path=raw_path[strip:],
                state=_own_state(scope, inbound),
            )
            await self._own_apps.serve(
                self._admin_api, mounted, inbound, receive, send, max_body=ADMIN_API_MAX_BODY
            )
            return
        if path.startswith(prefix + "/"):
            await self._internal(inbound, path[len(prefix) :], send)
            return
        if self._settings.cors.is_preflight(inbound.method, inbound.headers):
            await self._preflight.answer(inbound, path, send)
            return
        body = self._settings.body
        admission = await self._gate.admit(
            inbound.facts(path),
            headers=inbound.headers,
            scope=scope,
            precheck=lambda: body.check_headers(inbound.headers),
        )
        if not admission.allowed:
            await self._outcomes.deny(inbound, admission, send)
            return
        await self._forwarder.forward(inbound, admission, receive, send)

    async def _enter(self, inbound: Inbound, send: Send) -> str | None:
        """The stages every request passes before it is served or decided (`Gate.screen`):
        the IP allowlist, the global limit, then the Host, the transfer coding and the
        canonical path. The path, or None when one refused (answered and audited here).

        Only a valid HTTP request for health, readiness or metrics skips them, so that probes
        reach those from anywhere, by whatever host they name (a load balancer probes by
        address); bastion's own endpoints skip the global limit alone.
        """
        path, rejected = _request_line(inbound, self._settings.allowed_hosts)
        if path in self._probe_paths and inbound.scope["type"] == "http":
            return path
        facts = inbound.facts(path or inbound.raw_path.decode("latin-1"))
        own = path is not None and (path in self._auth_paths or path.startswith(self._own_root))
        refused = await self._gate.screen(facts, rejected=rejected, global_limit=not own)
        if refused is not None:
            await self._outcomes.deny(inbound, refused, send)
            return None
        return path

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        inbound = self._inbound(scope)
        path = await self._enter(inbound, handshake_send(scope, send))
        if path is not None:
            await self._websockets.handle(inbound, path, receive, send)

    async def _internal(self, inbound: Inbound, subpath: str, send: Send) -> None:
        if subpath in _READ_ONLY and inbound.method not in ("GET", "HEAD"):
            await self._problem(
                inbound, send, problems.MethodNotAllowedError(inbound.method, ("GET", "HEAD"))
            )
            return
        if subpath == "/health":
            await self._json(inbound, send, 200, {"status": "ok"})
        elif subpath == "/ready":
            try:
                await asyncio.to_thread(self._ready_check)
            except StorageError:
                await self._json(inbound, send, 503, {"status": "unavailable", "storage": "down"})
                return
            await self._json(inbound, send, 200, {"status": "ready"})
        elif subpath == "/metrics":
            headers = [
                (b"content-type", self.metrics.content_type),
                (b"cache-control", b"no-store"),
            ]
            await self._outcomes.send_own(inbound, send, 200, headers, self.metrics.render())
        else:
            await self._problem(inbound, send, NotFoundError("nothing is served at this path"))

    async def _problem(self, inbound: Inbound, send: Send, error: BastionError) -> None:
        """A refusal of bastion's own endpoints (not audited: nothing was reached)."""
        status = problems.status_for(error)[0]
        headers = problems.response_headers(status, request_id=inbound.request_id, error=error)
        body = problems.problem_body(error, request_id=inbound.request_id, detail=str(error))
        await self._outcomes.send_own(inbound, send, status, headers, body)

    async def _json(
        self,
        inbound: Inbound,
        send: Send,
        status: int,
        payload: Any,
        *,
        content_type: bytes = b"application/json",
    ) -> None:
        headers = [(b"content-type", content_type), (b"cache-control", b"no-store")]
        await self._outcomes.send_own(inbound, send, status, headers, json.dumps(payload).encode())


def _request_line(inbound: Inbound, hosts: AllowedHosts) -> tuple[str | None, BastionError | None]:
    """The request's canonical path, and how its request line and headers fail the input checks
    (one valid Host, no transfer coding but chunked, a canonical path: no path then; a Host
    ``gateway.allowedHosts`` does not name). What a failure means is decided in pipeline
    order by `Gate.screen`."""
    http_version = inbound.scope.get("http_version", "1.1")
    try:
        host = request_host(inbound.headers, http_version=http_version)
        check_body_headers(inbound.headers, http_version=http_version)
        path = canonical_path(inbound.raw_path)
    except NonCanonicalPathError as exc:
        return None, RequestRejectedError(str(exc))
    except RequestRejectedError as exc:
        return None, exc
    if not hosts.permits(None if host is None else host.decode("latin-1")):
        return path, MisdirectedRequestError(
            "the Host names no host this server answers for (gateway.allowedHosts)"
        )
    return path, None


def _own_state(scope: Scope, inbound: Inbound) -> dict[str, Any]:
    """The scope state for bastion's own apps: they answer with this request's id and see
    the client address the edge resolved (`bastion.gateway.network.client_ip_of`)."""
    return {
        **scope.get("state", {}),
        problems.REQUEST_ID_STATE: inbound.request_id,
        CLIENT_IP_STATE: inbound.client_ip,
    }
