"""Reading a client certificate that the TLS layer has already verified: name and fingerprint.

Verification (chain to ``security.mtls.clientCA``, validity period) happens in the TLS
handshake; this module only extracts what identifies the holder. Parsing is cached per
certificate, since a keep-alive connection presents the same one on every request.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


class CertificateUnreadableError(ValueError):
    """The certificate cannot be parsed or names no common name."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    common_name: str
    fingerprint: str  # SHA-256 of the DER encoding, hex
    not_before: datetime
    not_after: datetime

    def valid_at(self, now: datetime) -> bool:
        return self.not_before <= now <= self.not_after


def der_to_pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


@functools.lru_cache(maxsize=1024)
def read_certificate(pem: str) -> CertificateInfo:
    """The holder's common name and the certificate's fingerprint and validity period."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise CertificateUnreadableError("certificate cannot be parsed") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str) or not names[0].value:
        raise CertificateUnreadableError("certificate must carry exactly one common name")
    der = cert.public_bytes(Encoding.DER)
    return CertificateInfo(
        common_name=names[0].value,
        fingerprint=hashlib.sha256(der).hexdigest(),
        not_before=cert.not_valid_before_utc.astimezone(UTC),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
    )
