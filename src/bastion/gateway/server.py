"""Running the gateway under uvicorn: TLS / mTLS options, worker processes, the ASGI TLS
extension in every scope, and a bound on request heads (uvicorn is imported only here).

uvicorn does not fill ``scope["extensions"]["tls"]`` itself; the protocol subclasses below add
it, once per connection, from the verified peer certificate. A certificate that fails
verification against ``security.mtls.clientCA`` (wrong CA, expired) aborts the handshake, so
only verified certificates ever reach the edge.

uvicorn's httptools protocol sets no limit on a request's line and headers, in size or in time:
a client could make it buffer them without end (200 MB of one header line took the process to
637 MB), or hold connections open for ever with a byte now and then (slowloris). The HTTP
protocol below answers 431 once a head passes `MAX_HEAD_BYTES` and 408 once it has taken
``gateway.timeouts.requestHead``, and answers what httptools cannot parse with a problem+json
400 rather than uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from bastion.config import BastionConfig
from bastion.core.ids import new_id
from bastion.crypto.certificates import der_to_pem
from bastion.errors import BastionError, RequestRejectedError
from bastion.gateway.problems import (
    HeadersTooLargeError,
    RequestTimeoutError,
    problem_body,
    response_headers,
    status_for,
)
from bastion.heap import freeze_startup_heap
from bastion.wiring_tls import tls_options

CONFIG_ENV = "BASTION_CONFIG"
FACTORY = "bastion.gateway.app:create_app"
DEFAULT_HEAD_TIMEOUT = 30.0
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


def request_head_timeout(app: Any) -> float:
    """``gateway.timeouts.requestHead`` of the gateway ``app`` serves, found through any
    middleware uvicorn wrapped around it (``.app``); the default if it serves something else."""
    while app is not None:
        seconds = getattr(app, "request_head_timeout", None)
        if isinstance(seconds, float | int):
            return float(seconds)
        app = getattr(app, "app", None)
    return DEFAULT_HEAD_TIMEOUT


def _add_extension(scope: Any, extension: dict[str, Any] | None) -> None:
    if extension is not None and isinstance(scope, dict):
        scope.setdefault("extensions", {})["tls"] = extension


class TlsHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the TLS extension in each request's scope, a 431 for
    a head over `MAX_HEAD_BYTES`, a 408 for a head slower than ``gateway.timeouts.requestHead``
    and problem+json for a request that is not valid HTTP.

    A head is counted by the bytes that arrive while it is incomplete; the chunk that
    completes it is not counted, and one chunk is at most a socket read (256 KiB). Its time
    runs from the connection's opening for the first request, and from its first byte for a
    later one (uvicorn's keep-alive timeout closes a connection idle between requests). A
    connection that sent nothing is closed without an answer. One timer a connection looks at
    the head under way when it fires and sets itself again, so a request costs no timer."""

    _tls: dict[str, Any] | None = None
    _in_head = True  # a connection starts waiting for a request line
    _head_bytes = 0
    _head_started = 0.0
    _head_timeout = DEFAULT_HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport)
        self._head_timeout = request_head_timeout(self.app)
        self._head_started = self.loop.time()
        self._head_timer = self.loop.call_later(self._head_timeout, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.logger.warning("request head over %d bytes refused (431)", MAX_HEAD_BYTES)
            detail = f"the request line and headers exceed {MAX_HEAD_BYTES:,} bytes"
            self._refuse(HeadersTooLargeError(detail))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_started = self.loop.time()
        _add_extension(self.scope, self._tls)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _check_head(self) -> None:
        """The connection's timer: refuse a head that has taken its time, else look again
        when the head under way (or the next one) could first have taken it."""
        self._head_timer = None
        if self.transport.is_closing():
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
            self._refuse(RequestTimeoutError(detail))

    def send_400_response(self, msg: str) -> None:
        """What httptools cannot parse (a control byte in a header, a bad request line)."""
        self._refuse(RequestRejectedError("the request is not valid HTTP/1.1"))

    def _refuse(self, error: BastionError) -> None:
        """Answer ``error`` as problem+json and close: the rest of the stream is unreadable."""
        request_id = new_id("req")
        status, title = status_for(error)
        body = problem_body(error, request_id=request_id, detail=str(error))
        headers = [
            *response_headers(status, request_id=request_id),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        head = [f"HTTP/1.1 {status} {title}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


class TlsWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, plus the TLS extension in the connection's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        _add_extension(getattr(self, "scope", None), self._tls)


def ws_limit(config: BastionConfig) -> dict[str, int]:
    """uvicorn refuses (1009) a client WebSocket message over ``inputValidation.maxSize``
    before buffering it whole; without input validation, uvicorn's own default holds."""
    rules = config.security.input_validation
    return {"ws_max_size": rules.max_size} if rules.enabled else {}


def run(
    config: BastionConfig,
    *,
    app: Any,
    config_path: Path,
    host: str | None,
    port: int | None,
    log_level: str,
    workers: int = 1,
) -> None:
    """Serve until stopped. With ``workers`` > 1, each worker process builds its own app from
    the configuration file named in ``$BASTION_CONFIG`` (uvicorn's factory mode)."""
    options: dict[str, Any] = {
        "host": host or config.gateway.host,
        "port": port or config.gateway.port,
        "log_level": log_level,
        "proxy_headers": False,  # client addresses come only from gateway.trustedProxies
        "server_header": False,
        "access_log": False,
        "lifespan": "on",
        "http": TlsHttpProtocol,
        "ws": TlsWebSocketProtocol,
        **ws_limit(config),
        **tls_options(config, config_dir=config_path.resolve().parent),
    }
    if workers > 1:
        os.environ[CONFIG_ENV] = str(config_path.resolve())
        uvicorn.run(FACTORY, factory=True, workers=workers, **options)
    else:
        freeze_startup_heap()
        uvicorn.run(app, **options)
