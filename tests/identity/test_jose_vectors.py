"""Published JOSE test vectors verify through bastion's pinned-key JWS check.

RFC 7520 section 4.1 (RS256) and 4.3 (ES512) with the RFC's "bilbo.baggins" keys (section
3.3 and 3.1), and RFC 8037 appendix A.4 (Ed25519).
"""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bastion.crypto.jwt import InvalidJwtError, PinnedKey, pinned_from_jwk, verify_signature

RFC7520_PAYLOAD = (
    "It\u2019s a dangerous business, Frodo, going out your door. You step onto the road, and if "
    "you don't keep your feet, there\u2019s no knowing where you might be swept off to."
).encode()

RFC7520_RSA = {
    "kty": "RSA",
    "kid": "bilbo.baggins@hobbiton.example",
    "use": "sig",
    "n": "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_"
    "AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7"
    "Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_"
    "vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
    "e": "AQAB",
}
RFC7520_EC = {
    "kty": "EC",
    "kid": "bilbo.baggins@hobbiton.example",
    "use": "sig",
    "crv": "P-521",
    "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
    "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1",
}
PAYLOAD_B64 = (
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb2"
    "50byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcg"
    "d2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
)
RFC7520_4_1 = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
    + PAYLOAD_B64
    + ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xu"
    "glII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE"
    "6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQ"
    "SE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"
)
RFC7520_4_3 = (
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
    + PAYLOAD_B64
    + ".AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy"
    "3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2"
)
RFC8037_KEY = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_A4 = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def test_rfc7520_4_1_rs256_verifies() -> None:
    key = pinned_from_jwk(RFC7520_RSA, allowed=("RS256",))
    header, payload = verify_signature(RFC7520_4_1, key)
    assert header["kid"] == "bilbo.baggins@hobbiton.example"
    assert payload == RFC7520_PAYLOAD


def test_rfc7520_4_3_es512_verifies() -> None:
    key = pinned_from_jwk(RFC7520_EC, allowed=("ES512",))
    assert verify_signature(RFC7520_4_3, key)[1] == RFC7520_PAYLOAD


def test_rfc8037_a4_ed25519_verifies() -> None:
    key = pinned_from_jwk(RFC8037_KEY, allowed=("EdDSA",))
    assert verify_signature(RFC8037_A4, key)[1] == b"Example of Ed25519 signing"


def test_rfc7520_vector_is_refused_when_its_algorithm_is_not_pinned() -> None:
    key = pinned_from_jwk(RFC7520_RSA, allowed=("PS256", "RS512"))
    with pytest.raises(InvalidJwtError) as caught:
        verify_signature(RFC7520_4_1, key)
    assert caught.value.reason == "algorithm_not_allowed"


def test_rfc7520_vector_with_one_flipped_signature_bit_fails() -> None:
    key = pinned_from_jwk(RFC7520_RSA, allowed=("RS256",))
    head, payload, signature = RFC7520_4_1.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(InvalidJwtError):
        verify_signature(f"{head}.{payload}.{flipped}", key)


def _reason(token: str, key: object) -> str:
    with pytest.raises(InvalidJwtError) as caught:
        verify_signature(token, key)  # type: ignore[arg-type]
    return caught.value.reason


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_every_pinned_rsa_scheme_verifies_a_pyjwt_signature(algorithm: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "x"}, private, algorithm=algorithm)
    key = PinnedKey("k", (algorithm,), private.public_key())
    assert verify_signature(token, key)[1] == b'{"sub":"x"}'
    other = "PS256" if algorithm.startswith("RS") else "RS256"
    assert _reason(token, PinnedKey("k", (other,), private.public_key())) == "algorithm_not_allowed"


@pytest.mark.parametrize(
    ("algorithm", "curve"),
    [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())],
)
def test_every_pinned_ec_scheme_verifies_and_needs_its_own_curve(
    algorithm: str, curve: ec.EllipticCurve
) -> None:
    private = ec.generate_private_key(curve)
    token = jwt.encode({"sub": "x"}, private, algorithm=algorithm)
    assert verify_signature(token, PinnedKey("k", (algorithm,), private.public_key()))
    # A key on another curve never verifies, whatever the pinned list says.
    wrong = ec.generate_private_key(ec.SECP256K1()).public_key()
    assert _reason(token, PinnedKey("k", (algorithm,), wrong)) == "bad_signature"


def test_ecdsa_signature_of_the_wrong_length_is_a_bad_signature() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    head, body, signature = jwt.encode({"sub": "x"}, private, algorithm="ES256").split(".")
    key = PinnedKey("k", ("ES256",), private.public_key())
    assert _reason(f"{head}.{body}.{signature}AAAA", key) == "bad_signature"


def test_key_of_another_type_than_the_algorithm_is_a_bad_signature() -> None:
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "x"}, rsa_private, algorithm="RS256")
    ed_key = ed25519.Ed25519PrivateKey.generate().public_key()
    assert _reason(token, PinnedKey("k", ("RS256",), ed_key)) == "bad_signature"


@pytest.mark.parametrize("damage", ["+", "/", "=", " ", "%", "\n"])
def test_segments_must_be_strict_base64url(damage: str) -> None:
    key = pinned_from_jwk(RFC7520_RSA, allowed=("RS256",))
    head, payload, signature = RFC7520_4_1.split(".")
    for token in (
        f"{head}{damage}.{payload}.{signature}",
        f"{head}.{payload}{damage}.{signature}",
        f"{head}.{payload}.{signature}{damage}",
    ):
        assert _reason(token, key) == "malformed_token"
