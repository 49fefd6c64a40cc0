"""The security block of spec/000 loads as written, including its alternative snippets."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.config import load_config, not_yet_enforced, parse_config

SPEC000 = Path(__file__).parent / "data" / "spec000.yaml"
ENVIRON = {"OIDC_CLIENT_ID": "parallax-web", "OIDC_CLIENT_SECRET": "oidc-secret-from-env"}


def test_spec000_security_block_loads() -> None:
    security = load_config(SPEC000, environ=ENVIRON).security
    assert security.mtls.enabled is True
    assert security.mtls.client_ca == "/etc/parallax/certs/ca.crt"
    assert security.mtls.client_ca_secret == "parallax-ca-secret"
    assert security.mtls.cert_manager.issuer.name == "parallax-issuer"
    assert security.authentication.jwt.jwks_uri == "https://auth.example.com/.well-known/jwks.json"
    oidc = security.sso.oidc
    assert oidc is not None
    assert oidc.client_id == "parallax-web"
    assert oidc.client_secret is not None
    assert oidc.client_secret.get_secret_value() == "oidc-secret-from-env"
    assert oidc.scopes == ("openid", "profile", "email")
    assert security.agent_auth.method == "mtls"
    assert security.rbac.default_role == "viewer"
    assert [role.name for role in security.rbac.roles] == ["pattern-manager", "execution-only"]
    assert security.rbac.roles[0].permissions[0].actions == ("create", "read", "update", "delete")
    assert [(b.subject.type, b.subject.name, b.role) for b in security.rbac.bindings] == [
        ("user", "alice@example.com", "admin"),
        ("group", "engineering", "developer"),
        ("serviceAccount", "ci-pipeline", "execution-only"),
    ]
    assert security.audit.file is not None
    assert security.audit.file.rotation.max_size == 100_000_000
    assert security.audit.file.rotation.max_age == timedelta(days=30)
    assert security.audit.retention == timedelta(days=365)
    assert security.encryption.at_rest.key_id == "alias/parallax-encryption"
    assert security.data_protection.masking.fields[-1] == "output.*.secret"
    assert security.input_validation.max_size == 10_000_000
    assert security.secrets.references["apiKey"].secret_ref.name == "parallax-secrets"
    assert str(security.network.ip_allowlist.ranges[0]) == "10.0.0.0/8"
    assert security.rate_limit.global_ is not None
    assert security.rate_limit.global_.requests_per_second == 1000
    assert security.rate_limit.per_pattern is not None
    assert security.rate_limit.per_pattern.requests_per_minute == 60
    assert security.sessions.timeout == timedelta(minutes=30)
    assert security.sessions.max_concurrent == 3
    assert security.gdpr.data_retention.audit_logs == timedelta(days=90)
    assert security.hipaa.audit.retention == timedelta(days=6 * 365)


def test_spec000_reports_exactly_the_unenforced_sections() -> None:
    config = load_config(SPEC000, environ=ENVIRON)
    assert not_yet_enforced(config) == [
        "security.mtls.serverCertSecret",
        "security.mtls.clientCASecret",
        "security.mtls.certManager",
        "security.sso",
        "security.encryption",
        "security.secrets",
        "security.sessions",
        "security.gdpr",
        "security.hipaa",
    ]


SPEC000_ALTERNATIVES = [
    pytest.param(
        """
        security:
          sso:
            enabled: true
            provider: okta
            okta:
              domain: your-org.okta.com
              clientId: ${OKTA_CLIENT_ID}
              clientSecret: ${OKTA_CLIENT_SECRET}
              authorizationServerId: default
        """,
        id="sso-okta",
    ),
    pytest.param(
        """
        security:
          sso:
            enabled: true
            provider: azure
            azure:
              tenantId: ${AZURE_TENANT_ID}
              clientId: ${AZURE_CLIENT_ID}
              clientSecret: ${AZURE_CLIENT_SECRET}
        """,
        id="sso-azure",
    ),
    pytest.param(
        """
        security:
          sso:
            enabled: true
            provider: google
            google:
              clientId: ${GOOGLE_CLIENT_ID}
              clientSecret: ${GOOGLE_CLIENT_SECRET}
              hostedDomain: example.com # Optional: restrict to domain
        """,
        id="sso-google",
    ),
    pytest.param(
        """
        security:
          secrets:
            provider: vault
            vault:
              address: https://vault.example.com
              auth:
                method: kubernetes
                role: parallax
              secretPath: secret/data/parallax
        """,
        id="secrets-vault",
    ),
    pytest.param(
        """
        security:
          secrets:
            provider: aws-secrets-manager
            aws:
              region: us-east-1
              secretPrefix: parallax/
        """,
        id="secrets-aws",
    ),
    pytest.param(
        """
        security:
          # Access control
          rbac:
            enabled: true
          # Audit logging
          audit:
            enabled: true
            level: verbose
            retention: 365d
          # Encryption
          encryption:
            atRest:
              enabled: true
            inTransit:
              enabled: true
          # Session management
          sessions:
            timeout: 30m
            maxConcurrent: 3
        """,
        id="soc2",
    ),
]


# spec/000's audit destination snippets: every key in them is enforced.
SPEC000_AUDIT_DESTINATIONS = [
    pytest.param(
        """
        security:
          audit:
            destination: elasticsearch
            elasticsearch:
              hosts:
                - https://es.example.com:9200
              index: parallax-audit
              username: ${ES_USERNAME}
              password: ${ES_PASSWORD}
        """,
        id="audit-elasticsearch",
    ),
    pytest.param(
        """
        security:
          audit:
            destination: splunk
            splunk:
              host: splunk.example.com
              port: 8088
              token: ${SPLUNK_HEC_TOKEN}
              index: parallax_audit
        """,
        id="audit-splunk",
    ),
    pytest.param(
        """
        security:
          audit:
            destination: cloudwatch
            cloudwatch:
              logGroup: /parallax/audit
              region: us-east-1
        """,
        id="audit-cloudwatch",
    ),
]


@pytest.mark.parametrize("text", SPEC000_AUDIT_DESTINATIONS)
def test_spec000_audit_destination_snippets_load_and_are_enforced(text: str) -> None:
    environ = {"ES_USERNAME": "es", "ES_PASSWORD": "es-password", "SPLUNK_HEC_TOKEN": "hec"}
    config = parse_config(textwrap.dedent(text), environ=environ)
    assert config.security.audit.destinations
    assert not_yet_enforced(config) == []


@pytest.mark.parametrize("text", SPEC000_ALTERNATIVES)
def test_spec000_alternative_snippets_load(text: str) -> None:
    environ = {
        name: f"value-of-{name.lower()}"
        for name in (
            "OKTA_CLIENT_ID",
            "OKTA_CLIENT_SECRET",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "GOOGLE_CLIENT_ID",
            "GOOGLE_CLIENT_SECRET",
            "ES_USERNAME",
            "ES_PASSWORD",
            "SPLUNK_HEC_TOKEN",
        )
    }
    config = parse_config(textwrap.dedent(text), environ=environ)
    assert not_yet_enforced(config)
