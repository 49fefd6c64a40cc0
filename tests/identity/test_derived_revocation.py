"""A token minted from another credential dies with it, on the next request: a client-credentials
token with its API key, a delegated (RFC 8693) token with the subject token it was exchanged
from and with the key, token or login session of its actor. Before, each lived out its
lifetime (15 minutes)."""

from __future__ import annotations

import pytest

from bastion.errors import AuthenticationError
from bastion.services.authn import Authenticated
from tests.identity.conftest import ACTOR, World
from tests.identity.test_tokens import exchanged, login_tokens, service_account, whois


def _client(world: World, secret: str) -> Authenticated:
    with world.services.storage.transaction() as tx:
        return world.services.api_keys.verify(tx, secret)


def _delegated(world: World, subject_token: str, client: Authenticated) -> str:
    return exchanged(world, subject_token, client=client).access_token


def _refused(world: World, token: str) -> str:
    with pytest.raises(AuthenticationError) as refused:
        whois(world, token)
    return refused.value.reason


def test_client_credentials_token_dies_with_its_api_key(world: World) -> None:
    _, secret = service_account(world, ["patterns:read"])
    token = world.identity.tokens.client_credentials(_client(world, secret), scope=None)
    assert whois(world, token.access_token).principal.name == "ci-bot"
    world.services.api_keys.revoke(tenant_name="default", reference="ci-secret", actor=ACTOR)
    assert _refused(world, token.access_token) == "revoked_key"


def test_delegated_token_dies_with_the_subject_token_it_was_exchanged_from(world: World) -> None:
    subject_token = str(login_tokens(world)["access_token"])
    _, secret = service_account(world, ["patterns:read"])
    delegated = _delegated(world, subject_token, _client(world, secret))
    assert whois(world, delegated).actor is not None
    with world.services.storage.transaction() as tx:
        _, claims = world.identity.issued_tokens.verify_claims(tx, subject_token)
    world.identity.tokens.revoke_access(claims, actor=ACTOR)
    assert _refused(world, delegated) == "revoked_token"


def test_delegated_token_dies_with_its_actors_api_key(world: World) -> None:
    subject_token = str(login_tokens(world)["access_token"])
    _, secret = service_account(world, ["patterns:read"])
    delegated = _delegated(world, subject_token, _client(world, secret))
    world.services.api_keys.revoke(tenant_name="default", reference="ci-secret", actor=ACTOR)
    assert _refused(world, delegated) == "revoked_key"
    # The user's own token is untouched.
    assert whois(world, subject_token).principal.name == "admin@example.com"


def test_delegated_token_dies_with_its_actors_session(world: World) -> None:
    """The actor acts by its own login token: logging out (its refresh-token family revoked)
    stops the delegated token too, as it stops the actor's own access token."""
    subject_token = str(login_tokens(world)["access_token"])
    world.user("carol@example.com")
    carol = login_tokens(world, "carol@example.com")
    delegated = exchanged(world, subject_token, actor_token=str(carol["access_token"])).access_token
    acting = whois(world, delegated).actor
    assert acting is not None and acting.principal.name == "carol@example.com"
    assert world.identity.tokens.revoke_refresh(str(carol["refresh_token"]), owner=None)
    assert _refused(world, str(carol["access_token"])) == "revoked_token"
    assert _refused(world, delegated) == "revoked_token"
    # The user's own token is untouched.
    assert whois(world, subject_token).principal.name == "admin@example.com"
