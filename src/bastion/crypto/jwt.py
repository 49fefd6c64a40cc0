"""JSON Web Tokens (RFC 7515 / 7519) with the algorithm pinned per key, never read from the token.

RFC 8725 section 3.1: "Libraries MUST enable the caller to specify a supported set of algorithms
and MUST NOT use any other algorithms when performing cryptographic operations." Every key here
carries its own algorithms; a token whose header names another is refused before any signature
work, whatever it says (``none``, ``HS256`` with the public key as secret, …). ``jku``, ``x5u``,
``jwk`` and ``x5c`` header parameters are never read. Time checks take ``now`` and a leeway of
at most 60 seconds. Every failure is the one `InvalidJwtError`, its ``reason`` for the audit log.

A segment is scanned for nesting before it is parsed (`MAX_JSON_DEPTH`): a bearer of a few
kilobytes of brackets would otherwise exhaust the parser's recursion, on paths that run before
any signature is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bastion.core.bodies import json_depth_exceeds

SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_LEEWAY_SECONDS = 60
# A header is flat and claims nest an object or two (``act``, ``cnf``); far more is hostile.
MAX_JSON_DEPTH = 16
_KTY_ALGORITHMS = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}


class InvalidJwtError(ValueError):
    """A token that is not acceptable; ``reason`` says why, for the audit log only."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("invalid token")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidJwtError("malformed_token") from None


def _json_object(data: bytes) -> dict[str, Any]:
    """A decoded segment as a JSON object; `InvalidJwtError` for anything else, including a
    nesting deeper than `MAX_JSON_DEPTH` (refused by a linear scan, before the parser)."""
    brackets = data.count(b"[") + data.count(b"{")  # counted in C: most tokens skip the scan
    if brackets > MAX_JSON_DEPTH and json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise InvalidJwtError("malformed_token")
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: should the scan ever miss one
        raise InvalidJwtError("malformed_token") from None
    if not isinstance(parsed, dict):
        raise InvalidJwtError("malformed_token")
    return parsed


def split_compact(token: str) -> tuple[dict[str, Any], str]:
    """The decoded header and the payload segment of a three-part compact JWS."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise InvalidJwtError("malformed_token")
    return _json_object(_b64url_decode(parts[0])), parts[1]


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload, NOT verified: only to route a token to the verifier that will verify it."""
    _, payload = split_compact(token)
    return _json_object(_b64url_decode(payload))


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """A public key and the only algorithms a signature made with it may use."""

    kid: str
    algorithms: tuple[str, ...]
    key: Any


def pinned_from_jwk(jwk: Mapping[str, Any], *, allowed: tuple[str, ...]) -> PinnedKey:
    """A `PinnedKey` from a JWK: its ``alg`` if it has one (it must be allowed), else every
    allowed algorithm that fits its key type. `InvalidJwtError` for a key that fits none."""
    kty = str(jwk.get("kty", ""))
    fitting = tuple(a for a in allowed if a in _KTY_ALGORITHMS.get(kty, ()))
    if "alg" in jwk:
        fitting = tuple(a for a in fitting if a == jwk["alg"])
    if not fitting or kty == "oct":
        raise InvalidJwtError("unusable_key")
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=fitting[0]).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise InvalidJwtError("unusable_key") from None
    return PinnedKey(str(jwk.get("kid", "")), fitting, key)


def verify_signature(token: str, key: PinnedKey) -> tuple[dict[str, Any], bytes]:
    """Check the signature with ``key``'s pinned algorithms; the header and the raw payload.

    The three segments must be strict base64url (no padding, no other character) and the
    header's ``alg`` one of the key's algorithms before any signature work. The signature is
    checked with ``cryptography`` directly, by the pinned algorithm's own scheme.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise InvalidJwtError("malformed_token")
    head, body, signature = parts
    header = _json_object(_b64url_decode(head))
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in key.algorithms:
        raise InvalidJwtError("algorithm_not_allowed")
    if header.get("crit"):
        raise InvalidJwtError("unsupported_critical_header")
    signed = f"{head}.{body}".encode("ascii")
    try:
        _verify(algorithm, key.key, _b64url_decode(signature), signed)
    except InvalidSignature:
        raise InvalidJwtError("bad_signature") from None
    return header, _b64url_decode(body)


_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
_CURVES = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}


def _verify(algorithm: str, key: Any, signature: bytes, signed: bytes) -> None:
    """`InvalidSignature` unless ``signature`` is ``algorithm``'s signature of ``signed``;
    a key of another type than the algorithm's counts as a bad signature."""
    family, bits = algorithm[:2], algorithm[2:]
    if family == "RS" and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, signed, padding.PKCS1v15(), _HASHES[bits])
    elif family == "PS" and isinstance(key, rsa.RSAPublicKey):
        digest = _HASHES[bits]
        pss = padding.PSS(padding.MGF1(digest), digest.digest_size)
        key.verify(signature, signed, pss, digest)
    elif family == "ES" and isinstance(key, ec.EllipticCurvePublicKey):
        curve, size = _CURVES[algorithm]
        if key.curve.name != curve or len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(_HASHES[bits]))
    elif algorithm == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, signed)
    else:
        raise InvalidSignature


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJwtError(f"malformed_{name}")
    return float(value)


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str | None,
    now: datetime,
    leeway_seconds: float,
) -> None:
    """RFC 7519 section 4.1 checks: ``iss``, ``aud``, ``exp`` (required), ``nbf`` and ``iat``."""
    leeway = min(max(leeway_seconds, 0.0), MAX_LEEWAY_SECONDS)
    moment = now.timestamp()
    if claims.get("iss") != issuer:
        raise InvalidJwtError("wrong_issuer")
    if audience is not None:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise InvalidJwtError("wrong_audience")
    expires = _number(claims, "exp")
    if expires is None:
        raise InvalidJwtError("missing_exp")
    if moment >= expires + leeway:
        raise InvalidJwtError("expired_token")
    not_before = _number(claims, "nbf")
    if not_before is not None and moment + leeway < not_before:
        raise InvalidJwtError("token_not_yet_valid")
    issued = _number(claims, "iat")
    if issued is not None and moment + leeway < issued:
        raise InvalidJwtError("issued_in_the_future")


def verify_jwt(
    token: str,
    key: PinnedKey,
    *,
    issuer: str,
    audience: str | None,
    now: datetime,
    leeway_seconds: float,
) -> dict[str, Any]:
    """The verified claims of ``token``: pinned algorithm, signature, then claim checks."""
    _, payload = verify_signature(token, key)
    claims = _json_object(payload)
    check_claims(claims, issuer=issuer, audience=audience, now=now, leeway_seconds=leeway_seconds)
    return claims


def generate_private_key(algorithm: str) -> bytes:
    """A new private key for ``algorithm`` as PKCS#8 PEM (RSA 2048, P-256 or Ed25519)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, no white space."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(private_pem: bytes, algorithm: str) -> dict[str, Any]:
    """The public JWK of a private key, with ``kid`` (its RFC 7638 thumbprint), ``alg``, ``use``."""
    private = serialization.load_pem_private_key(private_pem, password=None)
    public = private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    elif isinstance(public, ed25519.Ed25519PublicKey):
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    else:
        raise ValueError("unsupported key type")
    jwk = {k: v for k, v in jwk.items() if k not in ("key_ops", "alg", "kid", "use")}
    return {**jwk, "kid": _thumbprint(jwk), "alg": algorithm, "use": "sig"}


class JwtSigner:
    """Signs claims with one private key, naming it by ``kid`` in every header."""

    __slots__ = ("_key", "algorithm", "kid")

    def __init__(self, private_pem: bytes, *, algorithm: str, kid: str) -> None:
        self._key = serialization.load_pem_private_key(private_pem, password=None)
        self.algorithm = algorithm
        self.kid = kid

    def sign(self, claims: Mapping[str, Any]) -> str:
        headers = {"kid": self.kid, "typ": "at+jwt"}
        return jwt.encode(dict(claims), self._key, algorithm=self.algorithm, headers=headers)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"JwtSigner(kid={self.kid!r}, algorithm={self.algorithm!r})"
