"""Client certificates from the TLS extension: a verified one names its holder; an expired one
(on a connection that outlived it) or an unreadable one is a 401, never an identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bastion.errors import AuthenticationError
from bastion.gateway.network import certificate_of, credential_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def pem(cn: str | None, *, days: int = 10) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = (
        [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if cn
        else [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme")]
    )
    name = x509.Name(attrs)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=20))
        .not_valid_after(NOW + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode()


def scope(chain: list[str]) -> dict[str, object]:
    return {"extensions": {"tls": {"client_cert_chain": chain}}}


def test_verified_certificate_names_its_holder() -> None:
    found = certificate_of(scope([pem("agent-7")]), now=NOW)
    assert found is not None and found.common_name == "agent-7"
    assert len(found.fingerprint) == 64


def test_no_tls_or_no_certificate_is_no_identity() -> None:
    assert certificate_of({}, now=NOW) is None
    assert certificate_of(scope([]), now=NOW) is None


@pytest.mark.parametrize(
    ("cn", "days", "reason"),
    [
        ("agent-7", -1, "expired_certificate"),
        (None, 10, "unreadable_certificate"),
    ],
)
def test_expired_or_nameless_certificate_is_401(cn: str | None, days: int, reason: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        certificate_of(scope([pem(cn, days=days)]), now=NOW)
    assert info.value.reason == reason


def test_two_different_credentials_are_ambiguous() -> None:
    with pytest.raises(AuthenticationError):
        credential_of([(b"authorization", b"Bearer a"), (b"x-api-key", b"b")])
    assert credential_of([(b"authorization", b"Bearer a"), (b"x-api-key", b"a")]) == "a"
