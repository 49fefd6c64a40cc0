"""Gateway configuration: CORS and allowlist validation, the policies read from it, TLS."""

from __future__ import annotations

import ssl
import textwrap
from pathlib import Path

import pytest

from bastion.config import parse_config
from bastion.errors import ConfigError
from bastion.gateway.settings import DEFAULT_PER_CLIENT, edge_settings_from, rate_policy_from
from bastion.wiring_tls import tls_options


def config(text: str):  # type: ignore[no-untyped-def]
    return parse_config(textwrap.dedent(text), environ={})


def test_wildcard_origin_with_credentials_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        config("gateway:\n  cors: {enabled: true, allowOrigins: ['*'], allowCredentials: true}\n")
    assert "gateway.cors.allowOrigins" in str(info.value)


@pytest.mark.parametrize("origin", ["https://a.example/path", "ftp://a.example", "a.example"])
def test_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(ConfigError):
        config(f"gateway:\n  cors: {{enabled: true, allowOrigins: ['{origin}']}}\n")


def test_empty_route_allowlist_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        config(
            "gateway:\n  routes:\n    - {method: GET, path: /a, resource: a, action: read,"
            " ipAllowlist: []}\n"
        )
    assert "gateway.routes[0].ipAllowlist" in str(info.value)


def test_bare_rate_limit_is_100_per_minute_per_client() -> None:
    policy = rate_policy_from(config("security:\n  rateLimit: {enabled: true}\n"))
    assert policy.per_client == DEFAULT_PER_CLIENT
    assert policy.global_ is None


def test_per_pattern_rate_is_per_minute() -> None:
    policy = rate_policy_from(
        config("security:\n  rateLimit: {enabled: true, perPattern: {requestsPerMinute: 60}}\n")
    )
    assert policy.per_pattern is not None
    assert (policy.per_pattern.rate, policy.per_pattern.burst) == (1.0, 60)
    assert policy.per_client is None


def test_disabled_allowlist_allows_every_address() -> None:
    settings = edge_settings_from(
        config("security:\n  network:\n    ipAllowlist: {enabled: false, ranges: [10.0.0.0/8]}\n")
    )
    assert settings.allowlist.permits("203.0.113.1")


def test_tls_options_map_client_auth(tmp_path: Path) -> None:
    text = """
        security:
          mtls: {enabled: true, serverCert: s.crt, serverKey: s.key, clientCA: ca.crt,
                 clientAuth: request}
    """
    options = tls_options(config(text), config_dir=tmp_path)
    assert options["ssl_cert_reqs"] == ssl.CERT_OPTIONAL
    assert options["ssl_certfile"] == str(tmp_path / "s.crt")
    assert options["ssl_ca_certs"] == str(tmp_path / "ca.crt")
    assert tls_options(config("security: {}\n"), config_dir=tmp_path) == {}


def test_tls_needs_certificate_files_to_serve(tmp_path: Path) -> None:
    text = "security:\n  mtls: {enabled: true, serverCertSecret: tls, clientAuth: none}\n"
    with pytest.raises(ConfigError):
        tls_options(config(text), config_dir=tmp_path)
