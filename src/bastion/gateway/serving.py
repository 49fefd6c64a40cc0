"""Running the gateway under uvicorn: TLS / mTLS options, worker processes and the open-file
limit, with the protocols of `bastion.gateway.server` (uvicorn is imported only in these two).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import ssl
import sys
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from bastion.backends.ratelimit.shared import rate_limit_table
from bastion.config import BastionConfig
from bastion.gateway.connection_table import connection_table
from bastion.gateway.server import GatewayHttpProtocol, GatewayWebSocketProtocol
from bastion.gateway.workers import (
    CONNECTIONS_ENV,
    METRICS_ENV,
    PROMETHEUS_ENV,
    RATE_LIMIT_ENV,
    metrics_directory,
    shared_directory,
)
from bastion.heap import freeze_startup_heap
from bastion.wiring_tls import tls_options

CONFIG_ENV = "BASTION_CONFIG"
FACTORY = "bastion.gateway.app:create_app"
STARTUP_FAILURE = 3  # uvicorn's exit status when the server did not start
FILES_BESIDE_CONNECTIONS = 256
"""Descriptors a process needs besides its client connections: upstream pool, database,
audit pipe, logs and listening sockets."""


def raise_open_file_limit(connections: int) -> str | None:
    """Raise this process's open-file limit (inherited by workers) to what
    ``gateway.connections.max`` needs, as far as the hard limit allows; a warning when even
    that is short (connections past it would fail to be accepted, not be refused)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILES_BESIDE_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft != resource.RLIM_INFINITY and soft < wanted:
        return (
            f"gateway.connections.max is {connections} but the open-file limit is {soft} "
            f"(hard limit {hard}); raise it (ulimit -n, LimitNOFILE=) or lower the cap"
        )
    return None


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
        "http": GatewayHttpProtocol,
        "ws": GatewayWebSocketProtocol,
        **ws_limit(config),
        **tls_options(config, config_dir=config_path.resolve().parent),
    }
    # What uvicorn.run does, with `DeferredTlsConfig`. uvicorn re-raises the SIGINT it
    # stopped on once it has shut down: that is the end of serving, not an error.
    if workers > 1:
        os.environ[CONFIG_ENV] = str(config_path.resolve())
        served = DeferredTlsConfig(FACTORY, factory=True, workers=workers, **options)
        with contextlib.ExitStack() as shared, contextlib.suppress(KeyboardInterrupt):
            # gateway.connections caps all workers together; one /metrics reports them all.
            os.environ[CONNECTIONS_ENV] = str(shared.enter_context(connection_table(workers)))
            metrics = str(shared.enter_context(metrics_directory()))
            os.environ[METRICS_ENV] = os.environ[PROMETHEUS_ENV] = metrics
            if config.security.rate_limit.enabled and not config.storage.redis_url:
                # Without Redis the rate limits are counted in a table all workers share.
                table = shared.enter_context(rate_limit_table(shared_directory()))
                os.environ[RATE_LIMIT_ENV] = str(table)
            Multiprocess(served, sockets=[served.bind_socket()]).run()
        return
    freeze_startup_heap()
    served = DeferredTlsConfig(app, **options)
    served.load_app()
    server = uvicorn.Server(served)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class DeferredTlsConfig(uvicorn.Config):
    """uvicorn's configuration, but the TLS context it builds from the ``ssl_*`` options goes
    to the protocol (``deferred_tls``), not to the listening socket: `GatewayHttpProtocol`
    counts each connection against ``gateway.connections`` as it is accepted, then runs the
    handshake itself. Built in each worker (a context does not cross to a process)."""

    deferred_tls: ssl.SSLContext | None = None

    def load(self) -> None:
        super().load()
        self.deferred_tls, self.ssl = self.ssl, None
        started = logging.getLogger("uvicorn.error")
        if self.deferred_tls is not None and _HTTPS not in started.filters:
            started.addFilter(_HTTPS)


class _HttpsInStartLine(logging.Filter):
    """uvicorn's "Uvicorn running on http://…" line names the scheme by the TLS it gave the
    listening socket, none with `DeferredTlsConfig`: this makes it say https."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if str(record.msg).startswith("Uvicorn running on") and isinstance(args, tuple):
            record.args = ("https", *args[1:]) if args[:1] == ("http",) else args
        return True


_HTTPS = _HttpsInStartLine()
