"""Security headers and CORS: the upstream's values kept, bastion's added, HSTS only over TLS."""

from __future__ import annotations

from bastion.gateway.responses import CorsPolicy, HeaderPolicy

POLICY = HeaderPolicy.build(
    hsts_max_age=600,
    include_sub_domains=False,
    preload=False,
    referrer_policy="same-origin",
    frame_ancestors=["'none'"],
)


def test_hsts_only_over_tls() -> None:
    assert (b"strict-transport-security", b"max-age=600") in POLICY.own(https=True)
    assert all(n != b"strict-transport-security" for n, _ in POLICY.own(https=False))


def test_upstream_values_kept_and_frame_ancestors_always_added() -> None:
    upstream = [
        (b"Referrer-Policy", b"origin"),
        (b"content-security-policy", b"default-src 'self'"),
    ]
    merged = POLICY.merged(upstream, https=False)
    assert (b"Referrer-Policy", b"origin") in merged
    assert (b"referrer-policy", b"same-origin") not in merged
    assert (b"content-security-policy", b"frame-ancestors 'none'") in merged
    assert (b"content-security-policy", b"default-src 'self'") in merged
    assert (b"x-content-type-options", b"nosniff") in merged
    assert (b"x-frame-options", b"DENY") in merged


CORS = CorsPolicy(
    origins=frozenset({"https://app.example.com"}),
    methods=("GET", "POST"),
    headers=frozenset({"authorization", "content-type"}),
    credentials=True,
)


def test_preflight_granted_only_for_known_origin_method_and_headers() -> None:
    assert CORS.preflight("https://app.example.com", "POST", "Authorization")
    assert not CORS.preflight("https://evil.example", "POST", None)
    assert not CORS.preflight("https://app.example.com", "DELETE", None)
    assert not CORS.preflight("https://app.example.com", "GET", "x-secret")


def test_credentials_never_with_a_wildcard_origin_echo() -> None:
    headers = dict(CORS.actual("https://app.example.com"))
    assert headers[b"access-control-allow-origin"] == b"https://app.example.com"
    assert headers[b"access-control-allow-credentials"] == b"true"
    assert CORS.actual("https://evil.example") == [(b"vary", b"Origin")]


def test_upstream_cors_headers_replaced_when_bastion_owns_cors() -> None:
    upstream = [(b"Access-Control-Allow-Origin", b"*"), (b"content-type", b"text/plain")]
    assert CORS.strip_upstream(upstream) == [(b"content-type", b"text/plain")]
    assert CorsPolicy().strip_upstream(upstream) == upstream
