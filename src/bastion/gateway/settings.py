"""The gateway's policies read from configuration: limits, bodies, headers, CORS, allowlist."""

from __future__ import annotations

from bastion.config import BastionConfig
from bastion.core.hosts import AllowedHosts
from bastion.core.netrules import Allowlist
from bastion.core.ratelimit import Quota
from bastion.gateway.connections import ConnectionLimits
from bastion.gateway.edge import EdgeSettings
from bastion.gateway.headers import parse_networks
from bastion.gateway.limits import RatePolicy
from bastion.gateway.responses import CorsPolicy, HeaderPolicy
from bastion.gateway.validation import BodyPolicy

# spec/004: "Rate limiting (100 req/min default)", used when rateLimit is enabled bare.
DEFAULT_PER_CLIENT = Quota("perClient", 100 / 60, 100)


def rate_policy_from(config: BastionConfig) -> RatePolicy:
    limits = config.security.rate_limit
    pattern = limits.per_pattern
    rates = {
        "global": limits.global_,
        "perClient": limits.per_client,
        "perTenant": limits.per_tenant,
    }
    quotas = {
        name: Quota(name, rate.requests_per_second, rate.burst_size)
        for name, rate in rates.items()
        if rate is not None
    }
    if pattern is not None:
        burst = pattern.burst_size or pattern.requests_per_minute
        quotas["perPattern"] = Quota("perPattern", pattern.requests_per_minute / 60, burst)
    if not quotas:
        quotas["perClient"] = DEFAULT_PER_CLIENT
    return RatePolicy(
        global_=quotas.get("global"),
        per_client=quotas.get("perClient"),
        per_tenant=quotas.get("perTenant"),
        per_pattern=quotas.get("perPattern"),
        fail_closed=limits.fail_closed,
        replicas=limits.replicas,
    )


def body_policy_from(config: BastionConfig) -> BodyPolicy:
    rules = config.security.input_validation
    return BodyPolicy(
        enabled=rules.enabled,
        max_size=rules.max_size,
        allowed_types=tuple(rules.allowed_content_types),
        max_json_depth=rules.max_json_depth,
        max_json_size=rules.max_json_size,
        strip_html=rules.sanitize.html,
        strip_scripts=rules.sanitize.scripts,
    )


def header_policy_from(config: BastionConfig) -> HeaderPolicy:
    headers = config.gateway.security_headers
    hsts = headers.hsts
    return HeaderPolicy.build(
        hsts_max_age=int(hsts.max_age.total_seconds()) if hsts.enabled else None,
        include_sub_domains=hsts.include_sub_domains,
        preload=hsts.preload,
        referrer_policy=headers.referrer_policy,
        frame_ancestors=headers.frame_ancestors,
    )


def cors_policy_from(config: BastionConfig) -> CorsPolicy:
    cors = config.gateway.cors
    if not cors.enabled:
        return CorsPolicy()
    return CorsPolicy(
        origins=frozenset(cors.allow_origins),
        methods=tuple(m.upper() for m in cors.allow_methods),
        headers=frozenset(h.lower() for h in cors.allow_headers),
        expose=tuple(cors.expose_headers),
        credentials=cors.allow_credentials,
        max_age=int(cors.max_age.total_seconds()),
    )


def edge_settings_from(config: BastionConfig) -> EdgeSettings:
    network = config.security.network.ip_allowlist
    trusted_proxies = parse_networks([str(n) for n in config.gateway.trusted_proxies])
    connections = config.gateway.connections
    return EdgeSettings(
        prefix=config.gateway.prefix,
        trusted_proxies=trusted_proxies,
        allowed_hosts=AllowedHosts.of(config.gateway.allowed_hosts),
        default_tenant=config.security.default_tenant,
        allowlist=Allowlist.of(network.ranges if network.enabled else (), source="network"),
        body=body_policy_from(config),
        headers=header_policy_from(config),
        cors=cors_policy_from(config),
        websocket_recheck=config.gateway.websocket.recheck.total_seconds(),
        request_head_timeout=config.gateway.timeouts.request_head.total_seconds(),
        request_body_timeout=config.gateway.timeouts.request_body.total_seconds(),
        connections=ConnectionLimits(connections.max, connections.per_client, trusted_proxies),
    )
