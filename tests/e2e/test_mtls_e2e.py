"""TLS and mutual TLS served by bastion itself (uvicorn's ssl options), with certificates the
test generates: a CA, a server certificate, and good, expired and wrong-CA client certificates.

A verified client certificate names an agent or service account (its CN, in the default
tenant); one that fails verification never completes the handshake.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.config import load_config
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind
from bastion.wiring import build_services
from tests.e2e.gwstack import GatewayStack, gateway_stack

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)


@dataclass
class Issued:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path)


class Authority:
    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.issued = _write(directory, name, self.cert, self.key)

    def issue(self, stem: str, cn: str, *, server: bool = False, expired: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        start = NOW - timedelta(days=10 if expired else 1)
        end = NOW - timedelta(days=2) if expired else NOW + timedelta(days=10)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                critical=False,
            )
        return _write(self.directory, stem, builder.sign(self.key, hashes.SHA256()), key)


@dataclass
class Pki:
    ca: Authority
    server: Issued
    agent: Issued
    service: Issued
    user: Issued
    unknown: Issued
    expired: Issued
    wrong_ca: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(directory, "bastion-test-ca"), Authority(directory, "rogue-ca")
    return Pki(
        ca=ca,
        server=ca.issue("server", "bastion.test", server=True),
        agent=ca.issue("agent", "agent-7"),
        service=ca.issue("service", "ci-runner"),
        user=ca.issue("user", "admin@example.com"),
        unknown=ca.issue("unknown", "nobody-registered"),
        expired=ca.issue("expired", "agent-7", expired=True),
        wrong_ca=rogue.issue("wrong", "agent-7"),
    )


def config(pki: Pki, client_auth: str) -> dict[str, object]:
    return {
        "security": {
            "mtls": {
                "enabled": True,
                "serverCert": str(pki.server.cert),
                "serverKey": str(pki.server.key),
                "clientCA": str(pki.ca.issued.cert),
                "clientAuth": client_auth,
            },
            "agentAuth": {"method": "mtls"},
            "rbac": {
                "bindings": [
                    {"subject": {"type": "agent", "name": "agent-7"}, "role": "viewer"},
                    {
                        "subject": {"type": "serviceAccount", "name": "ci-runner"},
                        "role": "developer",
                    },
                ]
            },
        }
    }


def register_principals(workdir: Path) -> None:
    """Agents and service accounts are registered beforehand; certificates create nothing."""
    services = build_services(load_config(workdir / "bastion.yaml"))
    with services.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        for kind, name in (
            (PrincipalKind.AGENT, "agent-7"),
            (PrincipalKind.SERVICE_ACCOUNT, "ci-runner"),
        ):
            tx.principals.create(Principal(new_id("prn"), tenant.id, kind, name, NOW))
    services.storage.close()


def context(pki: Pki, client: Issued | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.issued.cert))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def call(stack: GatewayStack, pki: Pki, client: Issued | None, **headers: str) -> httpx.Response:
    return httpx.get(
        stack.base + "/api/patterns", verify=context(pki, client), headers=headers, timeout=10
    )


@pytest.fixture(scope="module")
def required(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    workdir = tmp_path_factory.mktemp("mtls-require")
    with gateway_stack(
        workdir, config(pki, "require"), tls_verify=context(pki, pki.agent)
    ) as stack:
        register_principals(workdir)
        yield stack


def test_good_certificate_becomes_its_agent_principal(required: GatewayStack, pki: Pki) -> None:
    response = call(required, pki, pki.agent)
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["x-bastion-principal"] == "agent-7"
    assert headers["x-bastion-roles"] == "viewer"
    [event] = required.audit_for(headers["x-bastion-request-id"])
    assert event["actor"]["type"] == "agent"


def test_service_account_certificate(required: GatewayStack, pki: Pki) -> None:
    response = call(required, pki, pki.service)
    assert response.status_code == 200
    assert dict(response.json()["headers"])["x-bastion-principal"] == "ci-runner"


@pytest.mark.parametrize("which", ["expired", "wrong_ca", "none"])
def test_bad_or_missing_certificate_is_refused_at_handshake(
    required: GatewayStack, pki: Pki, which: str
) -> None:
    client = None if which == "none" else getattr(pki, which)
    before = required.upstream_count()
    with pytest.raises(httpx.HTTPError):
        call(required, pki, client)
    assert required.upstream_count() == before


@pytest.mark.parametrize("which", ["user", "unknown"])
def test_valid_certificate_without_agent_or_service_account_is_401(
    required: GatewayStack, pki: Pki, which: str
) -> None:
    response = call(required, pki, getattr(pki, which))
    assert response.status_code == 401
    [event] = required.audit_for(response.json()["requestId"])
    reason = event["details"]["reason"]
    assert reason == ("certificate_not_allowed" if which == "user" else "unknown_certificate")


def test_hsts_when_serving_tls(required: GatewayStack, pki: Pki) -> None:
    response = call(required, pki, pki.agent)
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_api_key_over_mtls_acts_as_the_key_holder(required: GatewayStack, pki: Pki) -> None:
    response = call(required, pki, pki.agent, Authorization=f"Bearer {required.limited_key}")
    assert dict(response.json()["headers"])["x-bastion-principal"] == "admin@example.com"


@pytest.fixture(scope="module")
def requested(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    workdir = tmp_path_factory.mktemp("mtls-request")
    with gateway_stack(
        workdir,
        config(pki, "request"),
        bastion_args=["--workers", "2"],
        tls_verify=context(pki, None),
    ) as stack:
        register_principals(workdir)
        yield stack


def test_request_mode_accepts_no_certificate_with_a_key(requested: GatewayStack, pki: Pki) -> None:
    assert call(requested, pki, None).status_code == 401
    response = call(requested, pki, None, Authorization=f"Bearer {requested.limited_key}")
    assert response.status_code == 200
    assert call(requested, pki, pki.agent).status_code == 200


def test_request_mode_still_refuses_a_bad_certificate(requested: GatewayStack, pki: Pki) -> None:
    with pytest.raises(httpx.HTTPError):
        call(requested, pki, pki.wrong_ca)


def test_serve_with_two_workers_runs_two_processes(requested: GatewayStack) -> None:
    server = requested.processes[-1]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert len(children) >= 2  # uvicorn's supervisor keeps one process per worker
