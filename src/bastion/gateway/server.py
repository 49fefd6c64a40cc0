"""The gateway's connections under uvicorn: the ASGI TLS extension in every scope, a bound on
request heads, caps on open connections and the TLS handshake (`bastion.gateway.serving`
runs uvicorn with these protocols).

uvicorn does not fill ``scope["extensions"]["tls"]`` itself; the protocol subclasses below add
it, once per connection, from the verified peer certificate. A certificate that fails
verification against ``security.mtls.clientCA`` (wrong CA, expired) aborts the handshake, so
only verified certificates ever reach the edge.

uvicorn's httptools protocol sets no limit on a request's line and headers, in size or in time:
a client could make it buffer them without end (200 MB of one header line took the process to
637 MB), or hold connections open for ever with a byte now and then (slowloris). The HTTP
protocol below answers 431 once a head passes `MAX_HEAD_BYTES` and 408 once it has taken
``gateway.timeouts.requestHead``, and answers what httptools cannot parse with a problem+json
400 rather than uvicorn's plain text. Nor does uvicorn cap how many connections are open
(``limit_concurrency`` answers only once a request has been read, and counts no client): the
protocol counts each connection against ``gateway.connections``
(`bastion.gateway.connections`) and refuses one over a cap, 429 for one client and 503 in
all, at its first bytes. Every refusal is counted in ``bastion_connections_refused``.

TLS is not uvicorn's to do: a listening socket uvicorn wraps in TLS hands a connection to
the protocol only once its handshake is done, and asyncio lets a handshake take 60 s, so a
host opening connections and sending nothing held them uncounted until the process ran out
of descriptors (and then no one's connection was accepted). `serving.DeferredTlsConfig` keeps
the TLS context from the listening socket; the protocol counts the plain connection as it is
accepted, closes one over a cap at once, and then runs the handshake itself within
``gateway.timeouts.requestHead``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from bastion.core.ids import new_id
from bastion.crypto.certificates import der_to_pem
from bastion.errors import BastionError, RequestRejectedError
from bastion.gateway.connections import ConnectionCounter
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.problems import (
    HeadersTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
    TooManyConnectionsError,
    problem_body,
    response_headers,
    status_for,
)

_T = TypeVar("_T")

_HANDSHAKES: set[asyncio.Task[None]] = set()  # TLS handshakes under way in this process
DEFAULT_HEAD_TIMEOUT = 30.0
OVER_CAP_WAIT = 1.0
"""Seconds a connection over a cap may take to send its first bytes before it is closed."""
MAX_HEAD_BYTES = 64 * 1024
"""Bytes a request line and its headers may have together: twice nginx's default (four 8 KiB
buffers), four times h11's."""


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [der_to_pem(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


def gateway_attribute(app: Any, name: str, kind: type[_T]) -> _T | None:
    """The attribute ``name`` of the gateway ``app`` serves (`bastion.gateway.edge.Edge`),
    found through any middleware uvicorn wrapped around it (``.app``); None if it serves
    something else."""
    while app is not None:
        value = getattr(app, name, None)
        if isinstance(value, kind):
            return value
        app = getattr(app, "app", None)
    return None


def request_head_timeout(app: Any) -> float:
    """``gateway.timeouts.requestHead`` of the gateway ``app`` serves (else the default)."""
    seconds = gateway_attribute(app, "request_head_timeout", float)
    return DEFAULT_HEAD_TIMEOUT if seconds is None else seconds


def _add_extension(scope: Any, extension: dict[str, Any] | None) -> None:
    if extension is not None and isinstance(scope, dict):
        scope.setdefault("extensions", {})["tls"] = extension


class _Refusals:
    """What a connection needs to count itself against ``gateway.connections`` and to count
    its refusal: the gateway's counter and metrics (None when serving something else)."""

    def __init__(self, app: Any) -> None:
        self.counter = gateway_attribute(app, "connections", ConnectionCounter)
        self.metrics = gateway_attribute(app, "metrics", GatewayMetrics)

    def count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.connections_refused.labels(reason).inc()


_CAP_ERRORS: dict[str, tuple[type[BastionError], str]] = {
    "per_client": (TooManyConnectionsError, "this client already has the most open connections"),
    "max": (ServerBusyError, "the server already has the most open connections"),
}


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the TLS extension in each request's scope, a cap on
    open connections, a 431 for a head over `MAX_HEAD_BYTES`, a 408 for a head slower than
    ``gateway.timeouts.requestHead`` and problem+json for a request that is not valid HTTP.

    A head is counted by the bytes that arrive while it is incomplete; the chunk that
    completes it is not counted, and one chunk is at most a socket read (256 KiB). Its time
    runs from the connection's opening for the first request, and from its first byte for a
    later one (uvicorn's keep-alive timeout closes a connection idle between requests). A
    connection that sent nothing is closed without an answer. One timer a connection looks at
    the head under way when it fires and sets itself again, so a request costs no timer.

    A connection over a ``gateway.connections`` cap is not counted and never parsed: its first
    bytes get the refusal, and if none come within `OVER_CAP_WAIT` it is closed. A WebSocket
    upgraded from a connection keeps the connection's place until it closes."""

    _tls: dict[str, Any] | None = None
    _in_head = True  # a connection starts waiting for a request line
    _head_bytes = 0
    _head_started = 0.0
    _head_timeout = DEFAULT_HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None
    _refusals: _Refusals | None = None
    _over_cap: str | None = None  # why the connection is refused, when it is over a cap
    _admitted = False  # counted against gateway.connections, to be released when it ends

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        context = getattr(self.config, "deferred_tls", None)
        if isinstance(context, ssl.SSLContext) and not transport.get_extra_info("sslcontext"):
            self._accept_tls(transport, context)
            return
        super().connection_made(transport)
        self._tls = tls_extension(transport)
        self._head_timeout = request_head_timeout(self.app)
        self._head_started = self.loop.time()
        wait = self._head_timeout
        if self._refusals is None:  # not counted at accept already (`_accept_tls`)
            self._refusals = refusals = _Refusals(self.app)
            if refusals.counter is not None:
                self._over_cap = refusals.counter.admit(self._peer)
                self._admitted = self._over_cap is None
                if self._over_cap is not None:
                    wait = min(wait, OVER_CAP_WAIT)
                    self._note_over_cap(refusals.counter, self._peer)
        self._head_timer = self.loop.call_later(wait, self._check_head)

    def _accept_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Count a connection as it is accepted, before its TLS handshake: one over a cap is
        closed at once (there is no TLS yet to answer it in); one within is handed, as an
        accepted socket, to the loop's TLS with a handshake bounded by
        ``gateway.timeouts.requestHead``, and then served by a protocol of its own.

        This plain transport is closed here, before the loop reads from it (uvloop starts
        reading once this method returns and would not let it be paused): the handshake's
        bytes wait in the socket, which a duplicate descriptor keeps open."""
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else None
        self._refusals = refusals = _Refusals(self.app)
        if refusals.counter is not None:
            over_cap = refusals.counter.admit(peer)
            if over_cap is not None:
                self._over_cap = over_cap
                self._note_over_cap(refusals.counter, peer)
                transport.abort()
                return
            self._admitted = True
        try:
            accepted = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        except OSError:
            self._release(peer)
            transport.abort()
            return
        transport.abort()
        served = type(self)(self.config, self.server_state, self.app_state, self.loop)
        served._refusals, served._admitted = self._refusals, self._admitted
        self._admitted = False  # the place is the served protocol's to give back
        handshake = self.loop.create_task(
            served._shake_hands(accepted, context, peer, request_head_timeout(self.app))
        )
        _HANDSHAKES.add(handshake)  # held until done: the loop keeps tasks weakly
        handshake.add_done_callback(_HANDSHAKES.discard)

    async def _shake_hands(
        self, accepted: socket.socket, context: ssl.SSLContext, peer: str | None, limit: float
    ) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: self, accepted, ssl=context, ssl_handshake_timeout=limit
            )
        except BaseException as exc:
            self._release(peer)
            accepted.close()
            if not isinstance(exc, Exception):
                raise  # cancelled: the server is stopping
            # A wrong or expired client certificate, a client that sent no ClientHello in
            # time, or one that went away: no request was read, so nothing is audited.
            self.logger.debug("TLS handshake from %s failed: %s", peer, type(exc).__name__)
            self._count_refusal("tls_handshake")

    @property
    def _peer(self) -> str | None:
        return self.client[0] if self.client else None

    def _note_over_cap(self, counter: ConnectionCounter, peer: str | None) -> None:
        reason = self._over_cap or ""
        self._count_refusal(reason)
        refused = counter.refused(self.loop.time())
        if refused is not None:
            setting = "perClient" if reason == "per_client" else "max"
            self.logger.warning(
                "connection from %s refused: gateway.connections.%s reached "
                "(%d refused since the last report; %d open)",
                peer,
                setting,
                refused,
                counter.open,
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:  # closed over a cap before any TLS: never served
            return
        self._stop_head_timer()
        self._release()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _release(self, peer: str | None = None) -> None:
        """Give back the connection's place (``peer``: its address, before it is served)."""
        if self._admitted and self._refusals is not None and self._refusals.counter is not None:
            self._refusals.counter.release(peer if peer is not None else self._peer)
        self._admitted = False

    def data_received(self, data: bytes) -> None:
        if self._over_cap is not None:
            if not self.transport.is_closing():
                error, detail = _CAP_ERRORS[self._over_cap]
                self._refuse(error(detail))
            return
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.logger.warning("request head over %d bytes refused (431)", MAX_HEAD_BYTES)
            detail = f"the request line and headers exceed {MAX_HEAD_BYTES:,} bytes"
            self._count_refusal("head_too_large")
            self._refuse(HeadersTooLargeError(detail))

    def _count_refusal(self, reason: str) -> None:
        if self._refusals is not None:
            self._refusals.count(reason)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_started = self.loop.time()
        _add_extension(self.scope, self._tls)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        """The WebSocket protocol takes the connection over, and its place in the count."""
        self._stop_head_timer()
        super().handle_websocket_upgrade()
        websocket = self.transport.get_protocol()
        if isinstance(websocket, GatewayWebSocketProtocol) and self._admitted:
            websocket.hold_place(self._release)
        else:
            self._release()

    def _check_head(self) -> None:
        """The connection's timer: refuse a head that has taken its time, else look again
        when the head under way (or the next one) could first have taken it."""
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._over_cap is not None:
            self.transport.close()  # sent nothing while over a cap
            return
        seconds = self._head_timeout
        left = self._head_started + seconds - self.loop.time() if self._in_head else seconds
        if left > 0:
            self._head_timer = self.loop.call_later(left, self._check_head)
        elif not self._head_bytes:
            self.transport.close()  # nothing was asked
        else:
            self.logger.warning("request head not complete in %gs refused (408)", seconds)
            detail = f"the request head did not arrive within {seconds:g}s"
            self._count_refusal("head_timeout")
            self._refuse(RequestTimeoutError(detail))

    def send_400_response(self, msg: str) -> None:
        """What httptools cannot parse (a control byte in a header, a bad request line)."""
        self._count_refusal("bad_http")
        self._refuse(RequestRejectedError("the request is not valid HTTP/1.1"))

    def _refuse(self, error: BastionError) -> None:
        """Answer ``error`` as problem+json and close: the rest of the stream is unreadable."""
        request_id = new_id("req")
        status, title = status_for(error)
        body = problem_body(error, request_id=request_id, detail=str(error))
        headers = [
            *response_headers(status, request_id=request_id, error=error),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        head = [f"HTTP/1.1 {status} {title}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, plus the TLS extension in the connection's scope; it
    keeps the place in ``gateway.connections`` of the connection it was upgraded from."""

    _tls: dict[str, Any] | None = None
    _release: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def hold_place(self, release: Callable[[], None]) -> None:
        """Call ``release`` when this WebSocket's connection ends."""
        self._release = release

    def connection_lost(self, exc: Exception | None) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
        super().connection_lost(exc)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        _add_extension(getattr(self, "scope", None), self._tls)
