"""Masking before write: credentials never reach a stored event whatever the level, and the
``security.dataProtection.masking`` rules redact, hash or partially show the fields named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.core.masking import REDACTED, FieldMasker, mask_event, mask_value
from bastion.crypto.checkpoints import generate_signing_key_pem
from bastion.crypto.keys import new_api_key, new_secret_token

from .conftest import Rig, make_rig
from .secrets_registry import REGISTRY

JWT = (
    "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSJ9."
    "c2lnbmF0dXJlLW5vdC1yZWFsbHktdmFsaWQtYnV0LWxvbmc"
)


def stored_parts(rig: Rig) -> list[dict[str, object]]:
    with rig.storage.transaction() as tx:
        return [
            {"actor": e.actor, "details": e.details, "request": e.request}
            for e in tx.audit.iterate()
        ]


@pytest.fixture
def masked_rig(sqlite_url: str) -> Iterator[Rig]:
    masker = FieldMasker(
        ["input.password", "output.*.secret", "request.query.ssn", "details.card"],
        method="redact",
    )
    rig = make_rig(sqlite_url, fields=masker)
    yield rig
    rig.storage.close()


def test_credentials_never_stored_whatever_field_they_hide_in(masked_rig: Rig) -> None:
    key, token = new_api_key(), new_secret_token("brt_")
    pem = generate_signing_key_pem().decode()
    REGISTRY.add(key, token, pem.splitlines()[1], JWT, "hunter2-Password!")
    masked_rig.append(
        masked_rig.event(
            1,
            actor={"type": "user", "id": "alice", "apiKey": key},
            details={
                "note": f"login with {key} then {token}",
                "nested": [{"Authorization": "Bearer " + JWT}, {"blob": pem}],
                "password": "hunter2-Password!",
                "jwt": JWT,
            },
            request={"path": f"/cb?token={token}", "headers": {"Cookie": "session=abc"}},
        )
    )
    [stored] = stored_parts(masked_rig)
    text = repr(stored)
    for secret in (key, token, JWT, "hunter2-Password!", pem.splitlines()[1], "session=abc"):
        assert secret not in text
    assert stored["actor"] == {"type": "user", "id": "alice", "apiKey": REDACTED}


def test_configured_paths_with_wildcards_are_redacted(masked_rig: Rig) -> None:
    masked_rig.append(
        masked_rig.event(
            2,
            details={
                "input": {"password": "pw-123456", "user": "alice"},
                "output": {"a": {"secret": "s1", "ok": 1}, "b": {"secret": "s2"}},
                "card": "4111111111111111",
            },
            request={"path": "/x", "query": {"ssn": "078-05-1120", "q": "visible"}},
        )
    )
    [stored] = stored_parts(masked_rig)
    assert stored["details"] == {
        "input": {"password": REDACTED, "user": "alice"},
        "output": {"a": {"secret": REDACTED, "ok": 1}, "b": {"secret": REDACTED}},
        "card": REDACTED,
    }
    assert stored["request"] == {"path": "/x", "query": {"ssn": REDACTED, "q": "visible"}}


def test_hash_method_is_keyed_and_stable() -> None:
    masker = FieldMasker(["ssn"], method="hash", hash_key=b"k" * 32)
    first = masker.mask_part("details", {"ssn": "078-05-1120"})["ssn"]
    again = masker.mask_part("details", {"ssn": "078-05-1120"})["ssn"]
    other = FieldMasker(["ssn"], method="hash", hash_key=b"q" * 32)
    assert first == again and first.startswith("hmac:") and len(first) == 21
    assert other.mask_part("details", {"ssn": "078-05-1120"})["ssn"] != first


def test_partial_method_shows_the_last_four_characters() -> None:
    masker = FieldMasker(["card", "pin"], method="partial")
    masked = masker.mask_part("details", {"card": "4111111111111111", "pin": "1234"})
    assert masked == {"card": "****1111", "pin": "****"}


def test_masking_twice_changes_nothing() -> None:
    for method in ("redact", "hash", "partial"):
        masker = FieldMasker(["a.b"], method=method, hash_key=b"k" * 16)
        once = masker.mask_part("details", {"a": {"b": "value-1234567"}})
        assert masker.mask_part("details", once) == once


def test_masking_does_not_change_the_callers_dicts() -> None:
    details = {"password": "x", "inner": {"token": "y"}, "keep": [1, "z"]}
    masked = mask_value(details)
    assert details == {"password": "x", "inner": {"token": "y"}, "keep": [1, "z"]}
    assert masked == {"password": REDACTED, "inner": {"token": REDACTED}, "keep": [1, "z"]}


def test_values_that_are_not_json_become_text(rig: Rig) -> None:
    from datetime import UTC, datetime

    rig.append(rig.event(1, details={"when": datetime(2026, 1, 1, tzinfo=UTC), "ids": {3}}))
    [stored] = stored_parts(rig)
    assert stored["details"] == {"when": "2026-01-01 00:00:00+00:00", "ids": "{3}"}


def test_mask_event_redacts_credentials_in_every_part() -> None:
    key = new_api_key()
    REGISTRY.add(key)
    from bastion.services.audit import build_event

    from .conftest import T0

    event = build_event(
        action="apikey.create",
        outcome="success",
        tenant="t",
        now=T0,
        actor={"id": key},
        resource={"id": key},
        details={"k": key},
        request={"k": key},
    )
    assert key not in repr(mask_event(event))
