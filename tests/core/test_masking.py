"""Masking before write: secret-named fields and credential-looking strings never survive."""

from __future__ import annotations

from bastion.core.masking import REDACTED, mask_value
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
