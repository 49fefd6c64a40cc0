"""The network stage: who is on the other end — client address and client certificate.

The client address is the socket peer unless the peer is a trusted proxy (`headers.
client_address`). The certificate is the one the TLS handshake verified against
``security.mtls.clientCA`` (`bastion.gateway.server` puts it in the scope); its validity
period is checked again per request, since a keep-alive connection can outlive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bastion.crypto.certificates import CertificateUnreadableError, read_certificate
from bastion.errors import AuthenticationError
from bastion.services.access import ClientCertificate

CLIENT_IP_STATE = "bastion.client_ip"
"""Where the edge leaves the client address it resolved in the scope's state for its own apps."""


def client_ip_of(scope: Mapping[str, Any]) -> str | None:
    """The client address the edge resolved (a trusted proxy's ``X-Forwarded-For``, else the
    peer; None when a trusted proxy's header cannot be read), else the socket peer."""
    state = scope.get("state")
    if isinstance(state, dict) and CLIENT_IP_STATE in state:
        resolved = state[CLIENT_IP_STATE]
        return resolved if isinstance(resolved, str) else None
    client = scope.get("client")
    return str(client[0]) if client else None


def certificate_of(scope: Mapping[str, Any], *, now: datetime) -> ClientCertificate | None:
    """The verified client certificate of the connection, or None if none was presented."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    try:
        info = read_certificate(chain[0])
    except CertificateUnreadableError:
        raise AuthenticationError("unreadable_certificate") from None
    if not info.valid_at(now):
        raise AuthenticationError("expired_certificate")
    return ClientCertificate(info.common_name, info.fingerprint)


def credential_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The credential from ``Authorization: Bearer`` or ``X-API-Key``; two different ones → 401."""
    found: set[str] = set()
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError("unsupported_authorization_scheme")
            found.add(token.strip())
        elif name == b"x-api-key":
            found.add(value.decode("latin-1").strip())
    if len(found) > 1:
        raise AuthenticationError("ambiguous_credential")
    return found.pop() if found else None
