"""The "not yet enforced" report: explicitly set keys whose feature bastion does not enforce."""

from __future__ import annotations

import textwrap

import pytest

from bastion.config import (
    ENFORCED,
    BastionConfig,
    config_key_paths,
    describe_not_yet_enforced,
    not_yet_enforced,
    parse_config,
)


def unenforced(text: str) -> list[str]:
    return not_yet_enforced(parse_config(textwrap.dedent(text), environ={}))


def test_defaults_report_nothing() -> None:
    assert not_yet_enforced(BastionConfig()) == []
    assert unenforced("") == []


def test_enforced_keys_are_not_reported() -> None:
    assert (
        unenforced(
            """
            storage:
              url: sqlite:///./data/bastion.db
            gateway:
              listen: 0.0.0.0:8080
              upstream: http://127.0.0.1:3000
              prefix: /_auth
              routes:
                - {method: GET, path: /a, resource: a, action: read}
              publicPaths: [/health]
              trustedProxies: [10.0.0.0/8]
            security:
              pepper: 0123456789abcdef0123456789abcdef
              defaultTenant: acme
              authentication:
                apiKeys: {enabled: true}
              rbac:
                enabled: true
                defaultRole: viewer
                roles: [{name: auditor, inherits: [viewer]}]
                bindings:
                  - {subject: {type: user, name: a@example.com}, role: auditor}
              audit:
                enabled: true
            """
        )
        == []
    )


def test_unenforced_keys_are_reported_at_the_shallowest_path() -> None:
    assert unenforced(
        """
        storage:
          redisUrl: redis://cache:6379/0
          redisPrefix: "b:"
        gateway:
          timeouts: {connect: 1s}
        security:
          mtls:
            enabled: true
            serverCertSecret: tls
            clientCASecret: ca
          sessions:
            timeout: 1h
        """
    ) == [
        "security.mtls.serverCertSecret",
        "security.mtls.clientCASecret",
        "security.sessions",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "security:\n  mtls:\n    enabled: false\n",
        "security:\n  rateLimit: {enabled: false}\n",
        "security:\n  authentication:\n    jwt: {enabled: false}\n",
        "security:\n  sso: {}\n",
        "security: {}\n",
    ],
)
def test_switching_off_an_unenforced_feature_is_not_reported(text: str) -> None:
    assert unenforced(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "security:\n  mtls: {enabled: true, serverCertSecret: t, clientAuth: none}\n",
            "security.mtls.serverCertSecret",
        ),
        ("security:\n  gdpr: {enabled: true}\n", "security.gdpr"),
        ("security:\n  gdpr: {enabled: false, consent: {required: true}}\n", "security.gdpr"),
        ("security:\n  sessions: {timeout: 1h}\n", "security.sessions"),
    ],
)
def test_anything_more_than_switching_off_is_reported(text: str, expected: str) -> None:
    assert unenforced(text) == [expected]


def test_describe_gives_one_line_per_key() -> None:
    config = parse_config("security:\n  gdpr: {enabled: true}\n", environ={})
    assert describe_not_yet_enforced(config) == ["security.gdpr: not yet enforced"]


def test_enforced_table_names_real_keys() -> None:
    known = set(config_key_paths())
    assert sorted(path for path in ENFORCED if path not in known) == []
