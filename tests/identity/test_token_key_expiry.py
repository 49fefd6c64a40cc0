"""An access token minted from an API key (client credentials, or an exchange whose actor is a
key) never outlives the key's expiry: it is issued to expire with the key, and a verified token
(in the verifier's cache, and a caller the gateway remembers) stops when the key expires, also
when that expiry was set later by a rotation's grace period. Before, both caches kept such a
token working until its own ``exp``, up to 15 minutes after its key had expired."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from bastion.errors import AuthenticationError
from bastion.services.access import RequestFacts
from bastion.services.authn import Authenticated
from tests.identity.conftest import ACTOR, World
from tests.identity.test_tokens import exchanged, login_tokens, service_account, whois


def _keyed_client(world: World, *, expires_in: timedelta | None) -> Authenticated:
    expires_at = None if expires_in is None else world.clock.now() + expires_in
    _, secret = service_account(world, ["patterns:read"], expires_at=expires_at)
    with world.services.storage.transaction() as tx:
        return world.services.api_keys.verify(tx, secret)


def _exp(token: str) -> int:
    body = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"])


def _refused(world: World, token: str) -> str:
    with pytest.raises(AuthenticationError) as refused:
        whois(world, token)
    return refused.value.reason


def test_client_credentials_token_never_outlives_its_api_key(world: World) -> None:
    client = _keyed_client(world, expires_in=timedelta(minutes=10))
    issued = world.identity.tokens.client_credentials(client, scope=None)
    assert issued.expires_in == 600
    assert client.expires_at is not None
    assert _exp(issued.access_token) == int(client.expires_at.timestamp())
    assert whois(world, issued.access_token).principal.name == "ci-bot"  # now cached
    world.clock.advance(minutes=10)
    assert _refused(world, issued.access_token) == "revoked_key"


def test_cached_token_stops_when_its_rotated_key_reaches_the_end_of_its_grace(
    world: World,
) -> None:
    """The key has no expiry when the token is minted; a rotation gives the old key one (the
    end of the grace period), and the token verified and remembered before stops with it."""
    client = _keyed_client(world, expires_in=None)
    token = world.identity.tokens.client_credentials(client, scope=None).access_token
    access = world.services.access
    facts = RequestFacts("GET", "/api/patterns", token, "127.0.0.1", None, "req-1")
    assert access.check(facts).identity is not None  # verified, cached and remembered
    world.services.api_keys.rotate(
        tenant_name="default", reference="ci-secret", grace=timedelta(seconds=10), actor=ACTOR
    )
    assert whois(world, token).principal.name == "ci-bot"  # still in its grace period
    assert access.check(facts).identity is not None
    assert access.check_cached(facts) is not None  # remembered again, until the grace ends
    world.clock.advance(seconds=10)
    assert access.check_cached(facts) is None  # no longer remembered: decided afresh
    refused = access.check(facts)
    assert isinstance(refused.error, AuthenticationError)
    assert refused.error.reason == "revoked_key"
    assert _refused(world, token) == "revoked_key"


def test_delegated_token_never_outlives_its_actors_api_key(world: World) -> None:
    subject_token = str(login_tokens(world)["access_token"])
    client = _keyed_client(world, expires_in=timedelta(minutes=5))
    issued = exchanged(world, subject_token, client=client)
    assert issued.expires_in == 300
    assert whois(world, issued.access_token).actor is not None  # now cached
    world.clock.advance(minutes=5)
    assert _refused(world, issued.access_token) == "revoked_key"


def test_delegated_token_never_outlives_the_key_behind_its_actor_token(world: World) -> None:
    """The actor presents a client-credentials token (its ``cid`` is the key): the delegated
    token carries the key as ``act.cid`` and stops when the key expires."""
    subject_token = str(login_tokens(world)["access_token"])
    client = _keyed_client(world, expires_in=timedelta(minutes=5))
    actor_token = world.identity.tokens.client_credentials(client, scope=None).access_token
    issued = exchanged(world, subject_token, actor_token=actor_token)
    assert issued.expires_in == 300
    assert whois(world, issued.access_token).actor is not None  # now cached
    world.clock.advance(minutes=5)
    assert _refused(world, issued.access_token) == "revoked_key"
