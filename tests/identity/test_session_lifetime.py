"""A login's session ends after ``sessionLifetime`` however often it rotates (ASVS 3.3.2:
periodic re-authentication). Before, each refresh token lived 7 days from its own issue, so a
session refreshed once a week lasted for ever on one password check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.core.model import AuditQuery
from bastion.errors import AuthenticationError
from tests.identity.conftest import FrozenClock, World, make_world
from tests.identity.test_tokens import login_tokens, whois

HOURS_12 = "  authentication:\n    tokens:\n      sessionLifetime: 12h\n"


@pytest.fixture
def twelve_hours(tmp_path: Path) -> Iterator[World]:
    built = make_world(f"sqlite:///{tmp_path}/b.db", clock=FrozenClock(), extra=HOURS_12)
    yield built
    built.services.identity.close()
    built.services.storage.close()


def _refused(world: World, token: str) -> str:
    with pytest.raises(AuthenticationError) as refused:
        world.identity.tokens.refresh(token, scope=None)
    return refused.value.reason


def test_a_session_ends_at_its_lifetime_however_often_it_rotates(twelve_hours: World) -> None:
    world, tokens = twelve_hours, twelve_hours.identity.tokens
    refresh = str(login_tokens(world)["refresh_token"])
    for _ in range(11):  # hourly, as a busy client would
        world.clock.advance(hours=1)
        issued = tokens.refresh(refresh, scope=None)
        refresh = str(issued.refresh_token)
    world.clock.advance(minutes=55)  # 11h55m into the session
    last = tokens.refresh(refresh, scope=None)
    assert last.expires_in == 300  # the access token stops with the session, not 15 min later
    assert whois(world, last.access_token).expires_at == world.clock.now() + timedelta(minutes=5)

    world.clock.advance(minutes=5)
    assert _refused(world, str(last.refresh_token)) == "session_expired"
    with world.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="token.refresh", outcome="failure"))
    assert event.details["reason"] == "session_expired"
    # A new login starts a new session.
    assert tokens.refresh(str(login_tokens(world)["refresh_token"]), scope=None).access_token


def test_the_default_lifetime_is_30_days(world: World) -> None:
    refresh = str(login_tokens(world)["refresh_token"])
    for days in (5, 5, 5, 5, 5, 4):  # each token would live 7 days; the session, 30
        world.clock.advance(days=days)
        refresh = str(world.identity.tokens.refresh(refresh, scope=None).refresh_token)
    world.clock.advance(days=1)  # day 30
    assert _refused(world, refresh) == "session_expired"


def test_a_token_stored_before_session_lifetimes_starts_counting_at_its_refresh(
    twelve_hours: World,
) -> None:
    world = twelve_hours
    refresh = str(login_tokens(world)["refresh_token"])
    with world.services.storage.transaction() as tx:  # as migration 0012 leaves it
        found = tx.refresh_tokens.find_by_hash(world.identity.tokens._hasher.digest(refresh))
        assert found is not None
    week = found.created_at + timedelta(days=7)  # refreshTokenTtl, uncut by any session
    legacy = replace(found, id="rtk_legacy", expires_at=week, session_ends_at=None)
    with world.services.storage.transaction() as tx:
        tx.refresh_tokens.delete_owned(found.tenant_id, found.principal_id)
        tx.refresh_tokens.create(legacy)
    world.clock.advance(hours=13)  # past what its session would have been
    successor = world.identity.tokens.refresh(refresh, scope=None)
    world.clock.advance(hours=11, minutes=59)
    following = world.identity.tokens.refresh(str(successor.refresh_token), scope=None)
    world.clock.advance(minutes=1)
    assert _refused(world, str(following.refresh_token)) == "session_expired"
