"""What the upstream is told about a delegated request (an RFC 8693 token: an agent acting for
a user): the user, and the actor with its roles, in headers and in the signed assertion, so an
upstream that decides for itself can intersect the two instead of trusting the user's roles."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from bastion.backends.memory import MemoryStorage
from bastion.core.model import RoleBinding, SubjectType
from bastion.crypto.identity import IdentitySigner
from bastion.gateway.headers import identity_headers
from bastion.services.exchange import ACCESS_TOKEN_TYPE
from tests.identity.conftest import World, make_world
from tests.identity.test_tokens import login_tokens, service_account


@pytest.fixture
def world() -> Iterator[World]:
    built = make_world("sqlite:///unused.db", storage=MemoryStorage())
    yield built
    built.services.identity.close()


def signed_claims(headers: dict[bytes, bytes], signer: IdentitySigner) -> dict[str, object]:
    key = jwt.PyJWK(signer.jwks()["keys"][0])
    token = headers[b"x-bastion-identity"].decode()
    return jwt.decode(
        token, key, algorithms=["EdDSA"], options={"verify_aud": False, "verify_exp": False}
    )


def test_delegated_request_names_the_actor_and_its_roles_to_the_upstream(world: World) -> None:
    user_token = str(login_tokens(world)["access_token"])  # admin@example.com, role admin
    _, secret = service_account(world, ["patterns:read"])
    with world.services.storage.transaction() as tx:
        tx.bindings.create(
            RoleBinding(
                "bnd-ci",
                world.tenant.id,
                SubjectType.SERVICE_ACCOUNT,
                "ci-bot",
                "viewer",
                world.clock.now(),
            )
        )
        agent = world.services.api_keys.verify(tx, secret)
    world.services.authorizer.invalidate()
    issued = world.identity.exchange.exchange(
        subject_token=user_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        client=agent,
        actor_token=None,
        actor_token_type=None,
        scope=None,
    )
    signer = IdentitySigner(b"p" * 40, issuer="bastion:test")
    access = world.services.access

    own = dict(identity_headers(access.identify(user_token).identity, signer, world.clock))
    assert b"x-bastion-actor" not in own and "act" not in signed_claims(own, signer)

    delegated = access.identify(issued.access_token).identity
    headers = dict(identity_headers(delegated, signer, world.clock))
    assert headers[b"x-bastion-principal"] == b"admin@example.com"
    assert headers[b"x-bastion-actor"] == b"ci-bot"
    assert headers[b"x-bastion-actor-roles"] == b"viewer"
    claims = signed_claims(headers, signer)
    assert claims["sub"] == "admin@example.com"
    assert claims["act"] == {"sub": "ci-bot", "kind": "serviceAccount", "roles": "viewer"}
    # The reuse cache never hands the user's own assertion to the delegated request.
    assert headers[b"x-bastion-identity"] != own[b"x-bastion-identity"]
