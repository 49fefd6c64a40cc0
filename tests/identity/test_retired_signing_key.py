"""A retired signing key vouches only for tokens it signed before it was retired, and only while
it is still published in the JWKS (until the last of those tokens has expired): after that it
verifies nothing, whatever a token says about itself, and the JWKS and verification agree at
every moment. A rotation made by another process holds on the next request. Before, every key
ever stored verified tokens for good, so a leaked key, rotated away, kept minting tokens."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from bastion.core.credentials import SigningKey
from bastion.crypto.jwt import JwtSigner
from bastion.errors import AuthenticationError
from bastion.services.signing_keys import _aad
from tests.identity.conftest import ACTOR, World, make_world
from tests.identity.test_tokens import login_tokens, whois


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _claims(token: str) -> dict[str, Any]:
    return _segment(token, 1)


def _kid(token: str) -> str:
    return str(_segment(token, 0)["kid"])


def _stored(world: World, kid: str) -> SigningKey:
    return next(k for k in world.identity.signing_keys.list() if k.kid == kid)


def _forged(world: World, key: SigningKey, claims: dict[str, Any]) -> str:
    """A token signed with ``key``'s private half: what whoever stole the key can make."""
    keys = world.identity.signing_keys
    pem = keys._sealer.open(key.sealed_private, aad=_aad(key.kid))
    return JwtSigner(pem, algorithm=key.algorithm, kid=key.kid).sign(claims)


def _verifies(world: World, token: str) -> bool:
    try:
        whois(world, token)
    except AuthenticationError as exc:
        assert exc.reason == "retired_key"
        return False
    return True


def _published(world: World, kid: str) -> bool:
    return any(k["kid"] == kid for k in world.identity.signing_keys.jwks()["keys"])


def _retire_active_key(world: World) -> tuple[SigningKey, dict[str, Any]]:
    """Rotate; the retired key and the claims of a genuine token it signed before."""
    genuine = str(login_tokens(world)["access_token"])
    world.identity.signing_keys.rotate(algorithm=None, actor=ACTOR)
    return _stored(world, _kid(genuine)), _claims(genuine)


def test_a_retired_key_verifies_nothing_once_it_leaves_the_jwks(world: World) -> None:
    retired, genuine = _retire_active_key(world)
    assert retired.publish_until is not None
    # Signed before the rotation, with a lifetime no bastion token has.
    long_lived = _forged(
        world, retired, {**genuine, "jti": "jti_long", "exp": genuine["iat"] + 365 * 86400}
    )
    world.clock.moment = retired.publish_until - timedelta(seconds=1)
    assert _published(world, retired.kid) and _verifies(world, long_lived)  # now cached too
    world.clock.moment = retired.publish_until
    assert not _published(world, retired.kid)
    assert not _verifies(world, long_lived)
    world.clock.advance(days=30)
    assert not _verifies(world, long_lived)
    with pytest.raises(AuthenticationError) as caller:
        world.services.access.identify(long_lived)
    assert caller.value.reason == "retired_key"  # the gateway's way in, signature checked first


def test_a_retired_key_refuses_tokens_signed_after_its_retirement(world: World) -> None:
    retired, genuine = _retire_active_key(world)
    assert retired.retired_at is not None
    before = _forged(world, retired, {**genuine, "jti": "jti_before"})
    assert _verifies(world, before)  # what it signed while active still stands
    # Replicas that have not re-read the keys sign with it for up to 30 s more; past that
    # (and the 5 s clock leeway), nothing it signs is genuine.
    world.clock.moment = retired.retired_at + timedelta(seconds=36)
    now = int(world.clock.now().timestamp())
    late = _forged(world, retired, {**genuine, "jti": "jti_late", "iat": now, "exp": now + 600})
    assert _published(world, retired.kid)  # still published, for the tokens signed before
    assert not _verifies(world, late)
    assert _verifies(world, before)


def test_a_rotation_by_another_process_holds_on_the_next_request(sql_world: World) -> None:
    """The CLI, or another replica, rotates: this replica, which verified (and cached) tokens
    with the key as its active one a moment ago, applies the retirement on its next request."""
    replica = make_world(sql_world.services.config.storage.url, clock=sql_world.clock)
    try:
        genuine = str(login_tokens(sql_world)["access_token"])
        assert whois(replica, genuine).principal.name == "admin@example.com"
        sql_world.identity.signing_keys.rotate(algorithm=None, actor=ACTOR)
        retired = _stored(sql_world, _kid(genuine))
        sql_world.clock.advance(minutes=1)
        now = int(sql_world.clock.now().timestamp())
        claims = {**_claims(genuine), "jti": "jti_late", "iat": now, "exp": now + 600}
        assert not _verifies(replica, _forged(sql_world, retired, claims))
        assert whois(replica, genuine).principal.name == "admin@example.com"
    finally:
        replica.services.identity.close()
        replica.services.storage.close()


def test_a_revocation_that_changes_no_key_does_not_reload_the_signer(world: World) -> None:
    """Every revocation moves the epoch, and the verifier then re-reads the keys; with no
    rotation among them the loaded signer stays (loading an RSA private key takes tens of
    milliseconds, which every logout would otherwise cost each replica's next request)."""
    keys = world.identity.signing_keys
    first = str(login_tokens(world)["access_token"])
    assert whois(world, first).principal.name == "admin@example.com"
    signer = keys.signer()
    with world.services.storage.transaction() as tx:
        tx.revocations.bump()
    second = str(login_tokens(world)["access_token"])
    assert whois(world, second).principal.name == "admin@example.com"
    assert keys.signer() is signer
    keys.rotate(algorithm=None, actor=ACTOR)
    assert keys.signer() is not signer  # a rotation does load the new one
