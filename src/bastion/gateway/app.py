"""`build_app`: the gateway ASGI application wired from configuration; `create_app` for
uvicorn's factory mode (``bastion serve --workers N``)."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.backends.ratelimit import RateLimitStore
from bastion.backends.ratelimit.memory import MemoryRateLimitStore
from bastion.backends.ratelimit.shared import SharedRateLimitStore
from bastion.config import BastionConfig, load_config
from bastion.crypto.identity import IdentitySigner
from bastion.gateway.api.app import build_admin_api
from bastion.gateway.audit_metrics import AuditDeliveryCollector
from bastion.gateway.auth.app import auth_paths, build_auth_app
from bastion.gateway.connection_table import SharedTally
from bastion.gateway.edge import Edge
from bastion.gateway.limits import RateLimiter
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.proxy import Timeouts, UpstreamProxy
from bastion.gateway.serving import CONFIG_ENV
from bastion.gateway.settings import edge_settings_from, rate_policy_from
from bastion.gateway.workers import CONNECTIONS_ENV, METRICS_ENV, RATE_LIMIT_ENV, shared
from bastion.heap import freeze_startup_heap
from bastion.wiring import Services, build_services
from bastion.wiring_audit import audit_sink_from, spool_states


def build_app(
    config: BastionConfig, *, services: Services | None = None, serving: bool = False
) -> Edge:
    """The gateway app. ``serving``: for `bastion serve` itself, whose per-request audit
    events are stored by a writer process (in-process uses keep a writer thread)."""
    services = services or build_services(config)
    gateway = config.gateway
    audit = audit_sink_from(
        config, storage=services.storage, clock=services.clock, writer_process=serving
    )
    proxy = None
    if gateway.upstream is not None:
        timeouts = gateway.timeouts
        proxy = UpstreamProxy(
            str(gateway.upstream),
            timeouts=Timeouts(
                connect=timeouts.connect.total_seconds(),
                read=timeouts.read.total_seconds(),
                total=timeouts.total.total_seconds(),
            ),
        )
    pepper = config.security.pepper
    assert pepper is not None  # build_services refused a configuration without one
    signer = IdentitySigner(
        pepper.get_secret_value().encode(), issuer=f"bastion:{config.security.default_tenant}"
    )
    metrics = GatewayMetrics(shared(METRICS_ENV) if serving else None)
    connections = shared(CONNECTIONS_ENV) if serving else None
    metrics.sample(AuditDeliveryCollector(lambda: spool_states(config)))
    services.identity.start_listening()
    services.authz.start()
    limiter = rate_limiter_from(config, metrics, table=shared(RATE_LIMIT_ENV) if serving else None)
    return Edge(
        settings=edge_settings_from(config),
        access=services.access,
        audit=audit,
        proxy=proxy,
        signer=signer,
        clock=services.clock,
        ready_check=services.storage.check,
        on_shutdown=lambda: _shutdown(services),
        admin_api=build_admin_api(services, audit=audit, limiter=limiter),
        auth_app=build_auth_app(services, audit=audit, extra_jwks=signer.jwks),
        auth_paths=frozenset(auth_paths(config.gateway.prefix)),
        limiter=limiter,
        metrics=metrics,
        connection_tally=SharedTally(connections) if connections is not None else None,
    )


def rate_limiter_from(
    config: BastionConfig, metrics: GatewayMetrics, *, table: Path | None = None
) -> RateLimiter | None:
    """Counters in Redis when ``storage.redisUrl`` is set (shared by replicas), else in the
    ``table`` the workers of one `bastion serve --workers N` share, else in memory."""
    if not config.security.rate_limit.enabled:
        return None
    store: RateLimitStore
    if config.storage.redis_url:
        from bastion.backends.ratelimit.redis import RedisRateLimitStore

        store = RedisRateLimitStore(config.storage.redis_url, prefix=config.storage.redis_prefix)
    elif table is not None:
        store = SharedRateLimitStore(table)
    else:
        store = MemoryRateLimitStore()
    return RateLimiter(
        rate_policy_from(config),
        store=store,
        shared=config.storage.redis_url is not None,
        metrics=metrics,
    )


def create_app() -> Edge:
    """The app of one worker process: configuration from ``$BASTION_CONFIG``."""
    path = os.environ.get(CONFIG_ENV)
    config = load_config(Path(path) if path else None)
    app = build_app(config, serving=True)
    freeze_startup_heap()
    return app


def _shutdown(services: Services) -> None:
    services.identity.close()
    services.authz.close()
    services.storage.close()
