"""A name that is taken, or a name that names nothing, is said in the caller's words by the
services (`bastion.services.changes.unique`, `bastion.services.lookups`), so the CLI and the
admin API say the same thing; the storage layer's own wording never reaches them. On the
in-memory backend and on SQLite, whose unique constraints refuse a row at the insert."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.backends.memory import MemoryStorage
from bastion.core.model import PrincipalKind, SubjectType
from bastion.errors import ConflictError, NotFoundError
from bastion.services.changes import unique
from bastion.services.lookups import get_group, get_tenant
from tests.identity.conftest import ACTOR, FrozenClock, World, make_world


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "memory":
        built = make_world("sqlite:///unused.db", clock=FrozenClock(), storage=MemoryStorage())
    else:
        built = make_world(f"sqlite:///{tmp_path}/bastion.db", clock=FrozenClock())
    yield built
    built.services.identity.close()
    built.services.storage.close()


def create_principal(kind: PrincipalKind, name: str) -> Callable[[World], Any]:
    return lambda w: w.identity.directory.create(
        tenant_name="default", kind=kind, name=name, actor=ACTOR
    )


def create_role(name: str) -> Callable[[World], Any]:
    return lambda w: w.services.authz.admin.save_role(
        tenant_name="default",
        name=name,
        permissions=["patterns:read"],
        inherits=[],
        actor=ACTOR,
        create=True,
    )


def create_key(name: str, owner: str | None = None) -> Callable[[World], Any]:
    return lambda w: w.services.api_keys.create(
        tenant_name="default",
        owner_name=owner,
        name=name,
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )


def bind(name: str) -> Callable[[World], Any]:
    return lambda w: w.services.authz.admin.bind(
        tenant_name="default",
        subject_type=SubjectType.SERVICE_ACCOUNT,
        subject_name=name,
        role="viewer",
        expires_at=None,
        actor=ACTOR,
    )


TAKEN = {
    "tenant": (
        lambda w: w.identity.directory.create_tenant(name="Acme", display_name="", actor=ACTOR),
        "a tenant named acme already exists",
    ),
    "user": (
        create_principal(PrincipalKind.USER, "Bob@Example.com"),
        "a user named bob@example.com already exists",
    ),
    "service account": (
        create_principal(PrincipalKind.SERVICE_ACCOUNT, "ci"),
        "a service account named ci already exists",
    ),
    "agent": (
        create_principal(PrincipalKind.AGENT, "scout"),
        "an agent named scout already exists",
    ),
    "group": (
        lambda w: w.identity.groups.create(tenant_name="default", name="Ops", actor=ACTOR),
        "a group named ops already exists",
    ),
    "role": (create_role("auditor"), "a role named auditor already exists"),
    "api key": (create_key("deploy"), "an API key named deploy already exists"),
}


@pytest.mark.parametrize("kind", sorted(TAKEN))
def test_a_taken_name_says_what_already_exists(world: World, kind: str) -> None:
    create, message = TAKEN[kind]
    create(world)
    with pytest.raises(ConflictError) as caught:
        create(world)
    assert str(caught.value) == message


def test_a_taken_credential_name_and_binding_say_so(world: World) -> None:
    create_principal(PrincipalKind.SERVICE_ACCOUNT, "ci")(world)
    create_key("ci-secret", owner="ci")(world)
    with pytest.raises(ConflictError) as key:
        create_key("ci-secret", owner="ci")(world)
    bind("CI")(world)
    with pytest.raises(ConflictError) as binding:
        bind("ci")(world)
    assert str(key.value) == "an API key named ci-secret already exists"
    assert str(binding.value) == "service account ci is already bound to role viewer"


def test_other_conflicts_keep_their_own_words(world: World) -> None:
    with pytest.raises(ConflictError, match="defined by bastion or its configuration"):
        create_role("admin")(world)
    with pytest.raises(ConflictError) as caught, unique("a tenant named x already exists"):
        raise ConflictError("tenant 'x' still has principals or groups")
    assert str(caught.value) == "tenant 'x' still has principals or groups"


MISSING = {
    "user": (
        lambda w: w.identity.directory.show(
            tenant_name="default", kind=PrincipalKind.USER, name="Ghost"
        ),
        "no user 'ghost' in tenant 'default'",
    ),
    "service account": (
        lambda w: w.identity.directory.delete(
            tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT, name="ghost", actor=ACTOR
        ),
        "no service account 'ghost' in tenant 'default'",
    ),
    "user of another kind": (
        lambda w: w.identity.directory.show(
            tenant_name="default", kind=PrincipalKind.USER, name="ci-bot"
        ),
        "no user 'ci-bot' in tenant 'default'",
    ),
    "group": (
        lambda w: w.identity.groups.show(tenant_name="default", name="nope"),
        "no group 'nope' in tenant 'default'",
    ),
    "member": (
        lambda w: w.identity.groups.add_member(
            tenant_name="default", name="staff", member="ghost", actor=ACTOR
        ),
        "no principal 'ghost' in tenant 'default'",
    ),
    "key owner": (create_key("k", owner="ghost"), "no principal 'ghost' in tenant 'default'"),
    "tenant": (lambda w: w.identity.directory.show_tenant("Nowhere"), "no tenant 'nowhere'"),
    "tenant of a service": (
        lambda w: w.identity.groups.list(tenant_name="nowhere"),
        "no tenant 'nowhere'",
    ),
    "role": (
        lambda w: w.services.authz.admin.delete_role(
            tenant_name="default", name="ghost", actor=ACTOR
        ),
        "no custom role 'ghost' in tenant 'default'",
    ),
    "built-in role": (
        lambda w: w.services.authz.admin.delete_role(
            tenant_name="default", name="admin", actor=ACTOR
        ),
        "no custom role 'admin' in tenant 'default'",
    ),
    "binding": (
        lambda w: w.services.authz.admin.unbind(
            tenant_name="default", binding_id="bnd_missing", actor=ACTOR
        ),
        "no binding 'bnd_missing' in tenant 'default'",
    ),
    "rule": (
        lambda w: w.services.authz.admin.delete_rule(
            tenant_name="default", rule_id="rul_missing", actor=ACTOR
        ),
        "no rule 'rul_missing' in tenant 'default'",
    ),
}


@pytest.mark.parametrize("kind", sorted(MISSING))
def test_a_missing_name_is_named_with_its_tenant(world: World, kind: str) -> None:
    create_principal(PrincipalKind.SERVICE_ACCOUNT, "ci-bot")(world)
    world.identity.groups.create(tenant_name="default", name="staff", actor=ACTOR)
    look_up, message = MISSING[kind]
    with pytest.raises(NotFoundError) as caught:
        look_up(world)
    assert str(caught.value) == message


def test_another_tenants_group_is_missing_in_the_same_words(world: World) -> None:
    world.identity.directory.create_tenant(name="beta", display_name="", actor=ACTOR)
    world.identity.groups.create(tenant_name="beta", name="zq-ops", actor=ACTOR)
    with world.services.storage.transaction() as tx:
        assert get_group(tx, get_tenant(tx, "Beta"), "ZQ-OPS").name == "zq-ops"
    answers = []
    for name in ("zq-ops", "nx-ops"):
        with pytest.raises(NotFoundError) as caught:
            world.identity.groups.show(tenant_name="default", name=name)
        answers.append(str(caught.value).replace(name, "<name>"))
    assert answers[0] == answers[1] == "no group '<name>' in tenant 'default'"
