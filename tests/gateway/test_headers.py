"""Header hygiene: reserved spellings (identity, client address, method and path overrides)
stripped, hop-by-hop dropped, one valid Host, XFF only from trusted peers."""

from __future__ import annotations

import pytest

from bastion.errors import RequestRejectedError
from bastion.gateway.headers import (
    client_address,
    is_reserved_header,
    parse_networks,
    request_host,
    strip_for_upstream,
)

TRUSTED = parse_networks(["10.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    "name",
    [
        b"x-bastion-principal",
        b"X-Bastion-Principal",
        b"x_bastion_principal",
        b"X_BASTION_TENANT",
        b"x-bastion-principal ",
        b"x-forwarded-user",
        b"remote-user",
        b"Remote_User",
        b"x-auth-request-email",
        b"x-original-uri",
        b"x-real-ip",
        b"forwarded",
        b"X-Authenticated-User",
        b"x_authenticated_userid",
        b"X-Auth-User",
        b"X-Consumer-ID",
        b"X-Userinfo",
        b"X-Proxy-User",
        b"X-MS-CLIENT-PRINCIPAL",
        b"X-MS-CLIENT-PRINCIPAL-NAME",
        b"x_ms_client_principal_id ",
        b"X-Goog-Authenticated-User-Email",
        b"X-Goog-IAP-JWT-Assertion",
        b"X-Amzn-Oidc-Identity",
        b"X-Amzn-Oidc-Data",
        b"Cf-Access-Authenticated-User-Email",
        b"Cf-Access-Jwt-Assertion",
    ],
)
def test_identity_header_spellings_detected(name: bytes) -> None:
    assert is_reserved_header(name)


CLIENT_ADDRESS_AND_CERTIFICATE = [
    b"True-Client-IP",
    b"CF-Connecting-IP",
    b"Fastly-Client-IP",
    b"X-Cluster-Client-IP",
    b"Client-IP",
    b"client_ip",
    b"X-Client-Cert",
    b"X-SSL-Client-Cert",
    b"X-SSL-Client-S-DN",
    b"x_ssl_client_s_dn",
    b"SSL-Client-Verify",
    b"SSL_CLIENT_VERIFY ",
]


@pytest.mark.parametrize("name", CLIENT_ADDRESS_AND_CERTIFICATE)
def test_client_address_and_certificate_headers_detected(name: bytes) -> None:
    assert is_reserved_header(name)


OVERRIDES = [
    b"X-HTTP-Method-Override",
    b"x-http-method-override",
    b"X_HTTP_Method_Override",
    b"X-HTTP-Method-Override ",
    b"X-HTTP-Method",
    b"X-Method-Override",
    b"x_method_override",
    b"X-Rewrite-URL",
    b"X_REWRITE_URL",
    b"X-Original-URL",
]


@pytest.mark.parametrize("name", OVERRIDES)
def test_method_and_path_override_headers_detected(name: bytes) -> None:
    assert is_reserved_header(name)


def test_method_override_headers_never_reach_upstream() -> None:
    headers = [(name, b"DELETE") for name in OVERRIDES] + [(b"accept", b"*/*")]
    assert strip_for_upstream(headers) == [(b"accept", b"*/*")]


@pytest.mark.parametrize(
    "name", [b"accept", b"content-type", b"x-request-id", b"x-client-name", b"user-agent"]
)
def test_ordinary_headers_are_not_reserved(name: bytes) -> None:
    assert not is_reserved_header(name)


def test_strip_for_upstream_drops_identity_hop_by_hop_and_connection_listed() -> None:
    headers = [
        (b"host", b"example"),
        (b"x-bastion-roles", b"admin"),
        (b"x_bastion_roles", b"admin"),
        (b"connection", b"keep-alive, x-secret-hop"),
        (b"x-secret-hop", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"accept", b"application/json"),
    ]
    assert strip_for_upstream(headers) == [(b"accept", b"application/json")]


def test_client_address_ignores_xff_from_untrusted_peer() -> None:
    assert client_address("203.0.113.9", [(b"x-forwarded-for", b"1.2.3.4")], TRUSTED) == (
        "203.0.113.9"
    )


def test_client_address_from_trusted_proxy_chain() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.0.0.2")]
    assert client_address("10.0.0.1", headers, TRUSTED) == "198.51.100.7"


def test_a_trusted_proxy_seen_through_a_dual_stack_socket_is_still_trusted() -> None:
    """A listener on ``::`` sees an IPv4 proxy as ``::ffff:10.0.0.1``: it is the proxy
    ``10.0.0.0/8`` names, as the allowlists read it, and its ``X-Forwarded-For`` counts."""
    headers = [(b"x-forwarded-for", b"198.51.100.7")]
    assert client_address("::ffff:10.0.0.1", headers, TRUSTED) == "198.51.100.7"
    assert client_address("::ffff:203.0.113.9", headers, TRUSTED) == "::ffff:203.0.113.9"


def test_malformed_xff_from_trusted_proxy_means_unknown_client() -> None:
    assert client_address("10.0.0.1", [(b"x-forwarded-for", b"not-an-ip")], TRUSTED) is None


def test_underscore_xff_spelling_is_not_trusted() -> None:
    headers = [(b"x_forwarded_for", b"6.6.6.6")]
    assert client_address("10.0.0.1", headers, TRUSTED) == "10.0.0.1"


def test_no_trusted_proxies_by_default() -> None:
    assert client_address("10.0.0.1", [(b"x-forwarded-for", b"6.6.6.6")], ()) == "10.0.0.1"


@pytest.mark.parametrize(
    "host",
    [
        b"example.com",
        b"example.com:8443",
        b"EXAMPLE.com.",
        b"127.0.0.1:80",
        b"[::1]",
        b"[2001:db8::1]:443",
        b"bastion",
        b"my_host-1.internal",
    ],
)
def test_valid_host_is_accepted(host: bytes) -> None:
    assert request_host([(b"host", host)], http_version="1.1") == host


@pytest.mark.parametrize(
    "host",
    [
        b"evil.example/../reset?x=1#",
        b"evil.example#",
        b"a.example,evil.example",
        b"a.example;evil",
        b"user@evil.example",
        b"ex%61mple.com",
        b"",
        b" example.com",
        b"example.com:",
        b"example.com:http",
        b"example.com:65536",
        b"example.com:\xb2",
        b"example.com:80:80",
        b"[::1",
        b"[::1]x",
        b"[fe80::1%25eth0]",
        b"[v1.future]",
        b"[127.0.0.1]",
        b"::1",
        b"exa mple.com",
    ],
)
def test_invalid_host_is_rejected(host: bytes) -> None:
    with pytest.raises(RequestRejectedError, match="not a valid host"):
        request_host([(b"host", host)], http_version="1.1")


def test_several_host_headers_are_rejected() -> None:
    headers = [(b"host", b"good.example"), (b"host", b"evil.example")]
    with pytest.raises(RequestRejectedError, match="more than one Host"):
        request_host(headers, http_version="1.1")


def test_missing_host_is_rejected_for_http_1_1_and_allowed_for_http_1_0() -> None:
    with pytest.raises(RequestRejectedError, match="no Host"):
        request_host([], http_version="1.1")
    assert request_host([], http_version="1.0") is None
