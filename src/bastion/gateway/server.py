"""Running the gateway under uvicorn: TLS / mTLS options, worker processes, and the ASGI TLS
extension in every scope (uvicorn is imported only here).

uvicorn does not fill ``scope["extensions"]["tls"]`` itself; the protocol subclasses below add
it, once per connection, from the verified peer certificate. A certificate that fails
verification against ``security.mtls.clientCA`` (wrong CA, expired) aborts the handshake, so
only verified certificates ever reach the edge.
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
from bastion.crypto.certificates import der_to_pem
from bastion.heap import freeze_startup_heap
from bastion.wiring_tls import tls_options

CONFIG_ENV = "BASTION_CONFIG"
FACTORY = "bastion.gateway.app:create_app"


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


def _add_extension(scope: Any, extension: dict[str, Any] | None) -> None:
    if extension is not None and isinstance(scope, dict):
        scope.setdefault("extensions", {})["tls"] = extension


class TlsHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the TLS extension in each request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        _add_extension(self.scope, self._tls)


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
