"""Once a refresh-token family is revoked, no token of it refreshes again, whatever the
interleaving. On PostgreSQL the revoking ``UPDATE`` (a replayed token, a logout, a new password)
does not see a successor that a concurrent, legitimate refresh of the family is inserting, so
that successor was left unrevoked and kept rotating for good (the family's access tokens were
refused for 15 minutes, then came back with the next rotation)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from bastion.errors import AuthenticationError
from bastion.services.authn import Authenticated
from tests.identity.conftest import World, make_world
from tests.identity.test_tokens import login_tokens, whois


def _refusal(call: Callable[..., Any], *args: object, **kw: object) -> str:
    with pytest.raises(AuthenticationError) as refused:
        call(*args, **kw)
    return refused.value.reason


def test_a_successor_the_family_revocation_did_not_see_never_refreshes(any_world: World) -> None:
    """The state the race leaves, built in one transaction on every backend: the revocation
    marks the tokens it sees, then the successor it could not see is stored."""
    world, tokens = any_world, any_world.identity.tokens
    first = login_tokens(world)
    second = tokens.refresh(str(first["refresh_token"]), scope=None)
    family = whois(world, second.access_token).credential_id  # a login token's cid: its family
    with world.services.storage.transaction() as tx:
        principal = tx.principals.get_by_name(world.tenant.id, "admin@example.com")
        tx.refresh_tokens.revoke_family(family, at=world.clock.now())
        held = Authenticated(principal, family, "refresh_token", None)
        escaped = tokens.issue_with_refresh(tx, held, tenant=world.tenant, family=family)
    assert escaped.refresh_token is not None
    assert _refusal(tokens.refresh, escaped.refresh_token, scope=None) == "revoked_refresh_token"
    # ... and from then on it is revoked like the rest of its family.
    assert _refusal(tokens.refresh, escaped.refresh_token, scope=None) == "revoked_refresh_token"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/b.db"
    return str(request.getfixturevalue("clean_postgres_url"))


@pytest.fixture
def replicas(shared_url: str) -> Iterator[list[World]]:
    """Three replicas on one database, sharing one frozen clock."""
    first = make_world(shared_url)
    worlds = [first] + [make_world(shared_url, clock=first.clock) for _ in range(2)]
    yield worlds
    for world in worlds:
        world.services.identity.close()
        world.services.storage.close()


def _wait_for_a_lock_wait(url: str) -> None:
    """Return once a session of the database waits for a lock (PostgreSQL): the replay's
    ``UPDATE`` of the family, queued behind the rotation's row lock."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(3000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    pytest.fail("no session waited for a lock: the second transaction did not queue")


def run_queued(
    first: Callable[[], None],
    second: Callable[[], None],
    *,
    paused: threading.Event,
    release: threading.Event,
    url: str,
) -> None:
    """Run ``first`` until it pauses inside its transaction (sets ``paused``, then waits for
    ``release``), then ``second``, which queues behind it (on PostgreSQL, waits for a lock;
    SQLite runs writers one at a time), then let ``first`` commit and both finish."""
    ahead = threading.Thread(target=first)
    ahead.start()
    assert paused.wait(60)
    queued = threading.Thread(target=second)
    queued.start()
    try:
        if url.startswith("postgresql"):
            _wait_for_a_lock_wait(url)
    finally:
        release.set()
        ahead.join()
        queued.join()


def test_a_replay_racing_a_rotation_leaves_no_successor_that_refreshes(
    replicas: list[World], shared_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas: one rotates the family's current token and stops before its commit, with
    the successor stored; the other, meanwhile, is presented the family's used token (a
    replay). On PostgreSQL the replay's revocation waits for the rotation's row lock and then
    misses the successor; on SQLite the two run one after the other. Either way the successor
    must not refresh."""
    world, holder, replayer = replicas
    first = login_tokens(world)
    current = world.identity.tokens.refresh(str(first["refresh_token"]), scope=None)
    for replica in (holder, replayer):
        replica.identity.tokens.warm()  # no key loading inside the race
    stored, release = threading.Event(), threading.Event()
    audit = holder.identity.tokens._audit_refresh

    def audit_then_wait(*args: Any, **kw: Any) -> None:
        audit(*args, **kw)
        stored.set()  # the successor is in the rotation's transaction, not yet committed
        assert release.wait(60)

    monkeypatch.setattr(holder.identity.tokens, "_audit_refresh", audit_then_wait)
    outcome: dict[str, Any] = {}

    def rotate() -> None:
        outcome["rotated"] = holder.identity.tokens.refresh(current.refresh_token, scope=None)

    def replay() -> None:
        try:
            replayer.identity.tokens.refresh(str(first["refresh_token"]), scope=None)
        except AuthenticationError as exc:
            outcome["replay"] = exc.reason

    run_queued(rotate, replay, paused=stored, release=release, url=shared_url)
    assert outcome["replay"] == "refresh_token_reuse"
    successor = outcome["rotated"]
    tokens = world.identity.tokens
    assert _refusal(tokens.refresh, successor.refresh_token, scope=None) == "revoked_refresh_token"
    assert _refusal(whois, world, successor.access_token) == "revoked_token"
