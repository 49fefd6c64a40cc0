"""`build_app`: the gateway ASGI application wired from configuration."""

from __future__ import annotations

from bastion.config import BastionConfig
from bastion.crypto.identity import IdentitySigner
from bastion.gateway.api.app import build_admin_api
from bastion.gateway.edge import Edge, EdgeSettings
from bastion.gateway.headers import parse_networks
from bastion.gateway.proxy import Timeouts, UpstreamProxy
from bastion.services.audit import AuditSink, GroupCommitAuditWriter, NullAuditSink
from bastion.wiring import Services, build_services


def build_app(config: BastionConfig, *, services: Services | None = None) -> Edge:
    services = services or build_services(config)
    gateway = config.gateway
    audit: AuditSink = (
        GroupCommitAuditWriter(services.storage)
        if config.security.audit.enabled
        else NullAuditSink()
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
    settings = EdgeSettings(
        prefix=gateway.prefix,
        trusted_proxies=parse_networks([str(n) for n in gateway.trusted_proxies]),
        default_tenant=config.security.default_tenant,
    )
    return Edge(
        settings=settings,
        access=services.access,
        audit=audit,
        proxy=proxy,
        signer=signer,
        clock=services.clock,
        ready_check=services.storage.check,
        on_shutdown=services.storage.close,
        admin_api=build_admin_api(services, audit=audit),
    )
