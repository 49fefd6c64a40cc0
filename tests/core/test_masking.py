"""Masking before write: secret-named fields and credential-looking strings never survive."""

from __future__ import annotations

import base64

from bastion.core.masking import REDACTED, has_credential_like, mask_value
from bastion.crypto.keys import new_api_key


def test_secret_named_fields_redacted_at_any_depth() -> None:
    masked = mask_value(
        {
            "input": {"password": "hunter2", "apiKey": "x", "user": "alice"},
            "list": [{"client_secret": "s"}],
            "Authorization": "Bearer y",
        }
    )
    assert masked == {
        "input": {"password": REDACTED, "apiKey": REDACTED, "user": "alice"},
        "list": [{"client_secret": REDACTED}],
        "Authorization": REDACTED,
    }


def test_credential_looking_strings_redacted_anywhere() -> None:
    key = new_api_key()
    masked = mask_value({"path": f"/api?key={key}", "note": ["bat_abcdefghijkl"]})
    assert key not in str(masked)
    assert "bat_abcdefghijkl" not in str(masked)


def test_more_credential_field_names_redacted_but_not_lookalikes() -> None:
    fields = ["accessKey", "AWS_ACCESS_KEY", "sessionId", "session", "otp", "pin", "auth",
              "backup_code", "recoveryCode", "totpCode", "mfa-code"]  # fmt: skip
    masked = mask_value({name: "v" for name in fields})
    assert masked == {name: REDACTED for name in fields}
    kept = {"footprint": "v", "spinner": "v", "author": "v", "sessions": 3}
    assert mask_value(kept) == kept


def test_pgp_private_key_block_and_url_password_redacted() -> None:
    pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQdGBF\n-----END PGP PRIVATE KEY BLOCK-----"
    masked = mask_value(
        {"note": f"key: {pgp} end", "dsn": "postgres://app:hunter2@db.internal:5432/x"}
    )
    assert masked == {
        "note": f"key: {REDACTED} end",
        "dsn": f"postgres://{REDACTED}@db.internal:5432/x",
    }
    plain = {"url": "https://db.internal:5432/x@y", "ua": "bot (+http://example.com/bot)"}
    assert mask_value(plain) == plain


def test_jwt_with_a_spaced_or_multiline_header_redacted() -> None:
    for header in ('{ "alg": "HS256" }', '{\n  "alg": "HS256"\n}', '{\t"alg":"none"}'):
        token = b64(header) + "." + b64('{"sub":"alice"}') + ".c2lnbmF0dXJl"
        assert has_credential_like(f'"{token}"')
        assert token not in str(mask_value({"t": f"Bearer {token}"}))


def test_credential_used_as_a_key_is_renamed_not_kept() -> None:
    key = new_api_key()
    masked = mask_value({key: "x", "ok": {f"bat_{'a' * 20}": 1, REDACTED: 2}})
    assert key not in str(masked)
    assert masked == {REDACTED: "x", "ok": {f"{REDACTED}#2": 1, REDACTED: 2}}


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
