"""What the validated models give their users: parsed values, normal forms and computed fields."""

from __future__ import annotations

import ipaddress
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bastion.config import (
    BastionConfig,
    GatewayConfig,
    RouteConfig,
    SecurityConfig,
    StorageConfig,
    config_key_paths,
    parse_config,
)
from bastion.errors import ConfigError


def load(text: str) -> BastionConfig:
    return parse_config(textwrap.dedent(text), environ={})


def test_defaults_need_no_file() -> None:
    config = BastionConfig()
    assert config.storage.url == "sqlite:///./bastion.db"
    assert config.storage.redis_url is None
    assert config.storage.redis_prefix == "bastion:"
    assert (config.gateway.host, config.gateway.port) == ("127.0.0.1", 8080)
    assert config.gateway.prefix == "/_bastion"
    assert config.gateway.trusted_proxies == ()
    assert config.gateway.timeouts.connect == timedelta(seconds=5)
    assert config.gateway.timeouts.read == timedelta(seconds=30)
    assert config.gateway.timeouts.total == timedelta(seconds=60)
    assert config.gateway.timeouts.request_head == timedelta(seconds=30)
    assert config.gateway.timeouts.request_body == timedelta(seconds=60)
    assert config.security.default_tenant == "default"
    assert config.security.authentication.api_keys.enabled is True
    assert config.security.authentication.jwt.algorithms == ("RS256",)
    assert config.security.authentication.jwt.leeway == timedelta(seconds=30)
    assert config.security.rbac.enabled is True
    assert config.security.audit.enabled is True
    assert config.security.audit.required is True
    assert config.security.audit.destination == "database"
    assert config.security.rate_limit.fail_closed is True


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:1", "0.0.0.0", 1),
        ("localhost:65535", "localhost", 65535),
        ("[::1]:8080", "::1", 8080),
        ("[::]:443", "::", 443),
    ],
)
def test_listen_address_is_split_into_host_and_port(listen: str, host: str, port: int) -> None:
    gateway = GatewayConfig(listen=listen)
    assert (gateway.host, gateway.port) == (host, port)


@pytest.mark.parametrize("listen", ["8080", ":8080", "host:0", "host:http", "[::1]8080", "[x]:80"])
def test_bad_listen_addresses_are_rejected(listen: str) -> None:
    with pytest.raises(ValidationError):
        GatewayConfig(listen=listen)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("http://app:3000", "http://app:3000"),
        ("http://app:3000/", "http://app:3000"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
    ],
)
def test_upstream_keeps_a_path_prefix_without_trailing_slash(written: str, stored: str) -> None:
    assert GatewayConfig(upstream=written).upstream == stored


def test_postgresql_url_is_normalised_to_the_psycopg_driver() -> None:
    storage = StorageConfig(url="postgresql://bastion@db/bastion")
    assert storage.url == "postgresql+psycopg://bastion@db/bastion"
    assert StorageConfig(url="postgresql+psycopg://db/x").url == "postgresql+psycopg://db/x"


def test_trusted_proxies_are_parsed_networks() -> None:
    gateway = load(
        """
        gateway:
          trustedProxies: [10.1.2.3/8, "fd00::1/8", 192.168.0.1]
        """
    ).gateway
    assert gateway.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.0.1/32"),
    )


def test_route_defaults_permission_and_event_from_resource_and_action() -> None:
    route = RouteConfig(method="get", path="/patterns/{name}", resource="patterns", action="read")
    assert route.method == "GET"
    assert route.effective_permission == "patterns:read"
    assert route.effective_event == "pattern.read"


def test_route_explicit_permission_and_event_win() -> None:
    route = RouteConfig(
        method="POST",
        path="/patterns/{name}/execute",
        resource="patterns",
        action="execute",
        id="{name}",
        permission="executions:create",
        event="pattern.execute",
    )
    assert route.effective_permission == "executions:create"
    assert route.effective_event == "pattern.execute"


def test_route_event_strips_only_one_trailing_s() -> None:
    route = RouteConfig(method="*", path="/status/**", resource="status", action="read")
    assert route.effective_event == "statu.read"
    assert RouteConfig(method="*", path="/", resource="audit", action="list").effective_event == (
        "audit.list"
    )


def test_route_event_of_an_ies_resource_is_the_y_noun_as_on_the_admin_api() -> None:
    route = RouteConfig(method="GET", path="/policies", resource="policies", action="read")
    assert route.effective_event == "policy.read"


def test_route_table_loads_from_yaml_in_order() -> None:
    gateway = load(
        """
        gateway:
          upstream: http://127.0.0.1:3000
          publicPaths: [/health, "/docs/**"]
          routes:
            - {method: GET, path: "/api/patterns", resource: patterns, action: list}
            - {method: GET, path: "/api/patterns/{name}", resource: patterns, action: read,
               id: "{name}"}
            - {method: "*", path: "/api/*/raw", resource: raw, action: read}
        """
    ).gateway
    assert [route.path for route in gateway.routes] == [
        "/api/patterns",
        "/api/patterns/{name}",
        "/api/*/raw",
    ]
    assert gateway.routes[1].id == "{name}"
    assert gateway.public_paths == ("/health", "/docs/**")


def test_config_is_frozen() -> None:
    config = BastionConfig()
    with pytest.raises(ValidationError):
        config.storage.url = "sqlite:///other.db"  # type: ignore[misc]


def test_keys_may_be_written_camel_case_or_snake_case_in_python() -> None:
    assert GatewayConfig(publicPaths=["/a"]).public_paths == ("/a",)  # type: ignore[call-arg]
    assert GatewayConfig(public_paths=["/a"]).public_paths == ("/a",)


def test_binding_expiry_without_offset_is_utc() -> None:
    rbac = load(
        """
        security:
          rbac:
            bindings:
              - subject: {type: user, name: alice@example.com}
                role: admin
                tenant: acme
                expires: 2030-01-31 12:00:00
              - subject: {type: agent, name: classifier}
                role: viewer
                expires: 2030-01-31T12:00:00+01:00
        """
    ).security.rbac
    assert rbac.bindings[0].expires == datetime(2030, 1, 31, 12, tzinfo=UTC)
    assert rbac.bindings[0].tenant == "acme"
    assert rbac.bindings[1].expires == datetime(2030, 1, 31, 11, tzinfo=UTC)


def test_custom_roles_may_inherit_built_in_and_custom_roles() -> None:
    rbac = load(
        """
        security:
          rbac:
            roles:
              - name: auditor
                inherits: [viewer]
                permissions: [{resource: audit, actions: [read, export]}]
              - name: lead-auditor
                inherits: [auditor, developer]
        """
    ).security.rbac
    assert [role.name for role in rbac.roles] == ["auditor", "lead-auditor"]
    assert rbac.roles[1].inherits == ("auditor", "developer")


def test_secret_references_are_available_by_name() -> None:
    secrets = load(
        """
        security:
          secrets:
            provider: kubernetes
            apiKey:
              secretRef: {name: parallax-secrets, key: api-key}
        """
    ).security.secrets
    assert list(secrets.references) == ["apiKey"]
    assert secrets.references["apiKey"].secret_ref.key == "api-key"


def test_mtls_needs_certificates_when_enabled() -> None:
    with pytest.raises(ValidationError):
        SecurityConfig.model_validate({"mtls": {"enabled": True}})
    mtls = SecurityConfig.model_validate(
        {"mtls": {"enabled": True, "serverCertSecret": "tls", "clientAuth": "none"}}
    ).mtls
    assert mtls.server_cert_secret == "tls"


def test_jwt_needs_issuer_audience_and_jwks_when_enabled() -> None:
    with pytest.raises(ConfigError) as caught:
        load("security:\n  authentication:\n    jwt: {enabled: true, audience: bastion}\n")
    assert [str(issue) for issue in caught.value.issues] == [
        "security.authentication.jwt.issuer: required when jwt is enabled",
        "security.authentication.jwt.jwksUri: required when jwt is enabled",
    ]


def test_model_validator_errors_name_their_keys_outside_the_loader() -> None:
    with pytest.raises(ValidationError) as caught:
        SecurityConfig.model_validate({"authentication": {"jwt": {"enabled": True}}})
    assert "issuer: required when jwt is enabled" in str(caught.value)


def test_syslog_destination_needs_host_or_socket() -> None:
    audit = load(
        """
        security:
          audit:
            destination: syslog
            syslog: {protocol: unix, socket: /dev/log}
        """
    ).security.audit
    assert audit.syslog is not None
    assert audit.syslog.socket == "/dev/log"


def test_key_paths_use_the_yaml_spelling() -> None:
    paths = config_key_paths()
    for expected in (
        "security.mtls.clientCA",
        "security.mtls.clientCASecret",
        "security.rateLimit.global.requestsPerSecond",
        "security.rbac.roles[].permissions[].actions",
        "security.secrets.<name>.secretRef.key",
        "gateway.routes[].id",
        "storage.redisUrl",
    ):
        assert expected in paths
    assert len(paths) == len(set(paths))
