"""Attacks on JWT verification, against bastion's own tokens and an external issuer's.

Every case must end in `AuthenticationError`; none may reach a principal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.core.model import (
    AuditQuery,
    PrincipalKind,
    ResourceRuleRecord,
    RoleBinding,
    SubjectType,
)
from bastion.errors import AuthenticationError
from bastion.services.access import AccessService, RequestFacts, Verdict
from bastion.services.authn import Authenticated, Authenticator
from bastion.services.external_jwt import ExternalJwtSettings, ExternalJwtVerifier
from bastion.services.token_verifier import JwtBearerVerifier
from tests.identity.conftest import ACTOR, World

ISSUER = "https://idp.example.test"
AUDIENCE = "bastion"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


class Fetcher:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.calls = 0

    def fetch(self, uri: str) -> dict[str, Any]:
        self.calls += 1
        return self.jwks


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def external(
    world: World, idp_key: rsa.RSAPrivateKey
) -> tuple[ExternalJwtVerifier, Fetcher, Ticker]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(idp_key.public_key()))
    fetcher = Fetcher({"keys": [{**public, "kid": "idp-1", "use": "sig"}]})
    ticker = Ticker()
    settings = ExternalJwtSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_uri=f"{ISSUER}/jwks",
        algorithms=("RS256",),
        leeway_seconds=30,
        subject_claim="sub",
        groups_claim="groups",
        tenant_claim=None,
        default_tenant="default",
        cache_ttl_seconds=3600,
        refetch_cooldown_seconds=60,
        auto_provision=True,
    )
    verifier = ExternalJwtVerifier(
        settings=settings,
        fetcher=fetcher,
        clock=world.clock,
        state=world.identity.revoker.state,
        monotonic=ticker,
    )
    return verifier, fetcher, ticker


def idp_claims(world: World, **override: Any) -> dict[str, Any]:
    now = int(world.clock.now().timestamp())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "Pat@Example.com",
        "iat": now,
        "exp": now + 300,
    }
    return {**claims, **override}


def idp_token(key: rsa.RSAPrivateKey, claims: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-1", **headers})


def signature_checks(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    """The tokens whose signature ``module`` checks (its `verify_jwt` calls), in order."""
    checks: list[str] = []
    real = module.verify_jwt

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checks.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(module, "verify_jwt", counting)
    return checks


def verify_with(world: World, verifier: Any, token: str) -> Authenticated:
    verifier.prepare(token)  # any JWKS fetch: before the transaction, as access.identify does
    with world.services.storage.transaction() as tx:
        return verifier.verify(tx, token)


def reason(world: World, verifier: Any, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verify_with(world, verifier, token)
    return caught.value.reason


def test_valid_external_token_provisions_the_user_and_syncs_groups(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey
) -> None:
    verifier, _, _ = external
    world.identity.groups.create(tenant_name="default", name="ops", actor=ACTOR)
    token = idp_token(idp_key, idp_claims(world, groups=["OPS", "unknown-group"]))
    authenticated = verify_with(world, verifier, token)
    assert authenticated.principal.name == "pat@example.com"
    assert authenticated.principal.kind is PrincipalKind.USER
    with world.services.storage.transaction() as tx:
        assert tx.groups.groups_of(world.tenant.id, authenticated.principal.id) == ["ops"]


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none_rejected(world: World, external: Any, alg: str) -> None:
    verifier, _, _ = external
    token = forge({"alg": alg, "kid": "idp-1"}, idp_claims(world))
    assert reason(world, verifier, token) == "algorithm_not_allowed"


def _public_forms(key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    public = key.public_key()
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": jwt.algorithms.RSAAlgorithm.to_jwk(public).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "der", "jwk"])
def test_hs256_signed_with_the_rsa_public_key_rejected(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey, form: str
) -> None:
    verifier, _, _ = external
    token = hs256({"alg": "HS256", "kid": "idp-1"}, idp_claims(world), _public_forms(idp_key)[form])
    assert reason(world, verifier, token) == "algorithm_not_allowed"


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../dev/null",
        "/etc/passwd",
        "' OR '1'='1",
        "idp-1'; DROP TABLE principals;--",
        "",
        None,
    ],
)
def test_kid_path_and_sql_injection_is_just_an_unknown_kid(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey, kid: Any
) -> None:
    verifier, _, _ = external
    claims = idp_claims(world)
    token = jwt.encode(
        claims, idp_key, algorithm="RS256", headers={"kid": kid} if kid is not None else None
    )
    assert reason(world, verifier, token) == "unknown_kid"
    with world.services.storage.transaction() as tx:
        assert tx.principals.list(world.tenant.id)  # the table is still there


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_jku_x5u_and_embedded_jwk_are_ignored(world: World, external: Any, header: str) -> None:
    verifier, fetcher, _ = external
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    value: Any = {
        "jku": "https://evil.test/jwks",
        "x5u": "https://evil.test/cert.pem",
        "jwk": attacker_jwk,
    }[header]
    token = jwt.encode(
        idp_claims(world), attacker, algorithm="RS256", headers={"kid": "idp-1", header: value}
    )
    assert reason(world, verifier, token) == "bad_signature"
    assert fetcher.calls == 1  # only the configured jwksUri was ever fetched


def test_unknown_kid_refetches_at_most_once_per_cooldown(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey
) -> None:
    verifier, fetcher, ticker = external
    verify_with(world, verifier, idp_token(idp_key, idp_claims(world)))
    assert fetcher.calls == 1
    for n in range(20):
        token = jwt.encode(
            idp_claims(world), idp_key, algorithm="RS256", headers={"kid": f"made-up-{n}"}
        )
        assert reason(world, verifier, token) == "unknown_kid"
    assert fetcher.calls == 1
    ticker.now += 61
    reason(
        world,
        verifier,
        jwt.encode(idp_claims(world), idp_key, algorithm="RS256", headers={"kid": "new"}),
    )
    assert fetcher.calls == 2


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"exp": -31}, "expired_token"),
        ({"nbf": 31}, "token_not_yet_valid"),
        ({"iat": 31}, "issued_in_the_future"),
        ({"iss": "https://evil.test"}, "wrong_issuer"),
        ({"aud": "someone-else"}, "wrong_audience"),
        ({"exp": None}, "missing_exp"),
    ],
)
def test_time_issuer_and_audience_claims_are_checked(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey, override: dict[str, Any], expected: str
) -> None:
    verifier, _, _ = external
    now = int(world.clock.now().timestamp())
    claims = idp_claims(world)
    for name, value in override.items():
        if value is None:
            claims.pop(name)
        elif isinstance(value, int):
            claims[name] = now + value
        else:
            claims[name] = value
    assert reason(world, verifier, idp_token(idp_key, claims)) == expected


def test_leeway_is_honoured_but_never_above_60_seconds(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey
) -> None:
    verifier, _, _ = external
    now = int(world.clock.now().timestamp())
    assert verify_with(world, verifier, idp_token(idp_key, idp_claims(world, exp=now - 29)))


def tamper(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "admin@example.com"
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


def test_tampered_payload_rejected(world: World, external: Any, idp_key: rsa.RSAPrivateKey) -> None:
    verifier, _, _ = external
    assert reason(world, verifier, tamper(idp_token(idp_key, idp_claims(world)))) == "bad_signature"


def test_fifth_segment_rejected(world: World, external: Any, idp_key: rsa.RSAPrivateKey) -> None:
    token = idp_token(idp_key, idp_claims(world)) + ".extra.segment"
    bearer = JwtBearerVerifier([external[0]])
    assert not bearer.accepts(token)
    with world.services.storage.transaction() as tx, pytest.raises(AuthenticationError) as caught:
        world.services.access._authenticator.authenticate(tx, token)
    assert caught.value.reason == "malformed_credential"


# -- bastion's own tokens ------------------------------------------------------------------


@pytest.fixture
def own_token(world: World) -> Callable[..., str]:
    def issue(**override: Any) -> str:
        with world.services.storage.transaction() as tx:
            admin = tx.principals.get_by_name(world.tenant.id, "admin@example.com")
        token, _ = world.identity.tokens.access_token(
            Authenticated(admin, "test", "test", ("patterns:read",)),
            tenant=world.tenant,
            now=world.clock.now(),
        )
        if not override:
            return token
        head, body, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return f"{head}.{b64(json.dumps({**claims, **override}).encode())}.{signature}"

    world.identity.tokens.warm()
    return issue


def own_reason(world: World, token: str) -> str:
    return reason(world, world.identity.verifiers[0], token)


def test_own_token_verifies_and_carries_its_scopes(
    world: World, own_token: Callable[..., str]
) -> None:
    authenticated = verify_with(world, world.identity.verifiers[0], own_token())
    assert authenticated.principal.name == "admin@example.com"
    assert authenticated.scopes == ("patterns:read",)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_own_token_alg_none_rejected(world: World, own_token: Callable[..., str], alg: str) -> None:
    head, body, _ = own_token().split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    token = forge(
        {**header, "alg": alg}, json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    )
    assert own_reason(world, token) == "algorithm_not_allowed"


@pytest.mark.parametrize("form", ["pem", "der", "jwk"])
def test_own_token_hs256_with_published_public_key_rejected(
    world: World, own_token: Callable[..., str], form: str
) -> None:
    jwks = world.identity.signing_keys.jwks()
    public = jwt.PyJWK(jwks["keys"][0]).key
    secret = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(jwks["keys"][0]).encode(),
    }[form]
    head, body, _ = own_token().split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert (
        own_reason(world, hs256({**header, "alg": "HS256"}, claims, secret))
        == "algorithm_not_allowed"
    )


def test_own_token_tampered_expired_and_foreign_issuer_rejected(
    world: World, own_token: Callable[..., str]
) -> None:
    assert own_reason(world, own_token(sub="usr_forged")) == "bad_signature"
    token = own_token()
    world.clock.advance(minutes=16)
    assert own_reason(world, token) == "expired_token"
    assert (
        own_reason(world, forge({"alg": "RS256"}, {"iss": "https://other.test"}))
        == "unknown_issuer"
    )


def test_own_token_revoked_by_jti_stops_on_the_next_request(
    world: World, own_token: Callable[..., str]
) -> None:
    token = own_token()
    verifier = world.identity.issued_tokens
    with world.services.storage.transaction() as tx:
        _, claims = verifier.verify_claims(tx, token)
    world.identity.tokens.revoke_access(claims, actor=ACTOR)
    assert own_reason(world, token) == "revoked_token"


def test_a_revoked_token_stays_refused_while_newer_revocations_clear_spent_ones(
    world: World, own_token: Callable[..., str]
) -> None:
    """Each revocation removes a couple of older ones whose tokens expired more than an hour
    ago, so logouts do not grow the table for good; one whose token could still verify is
    never among them."""
    verifier = world.identity.issued_tokens

    def revoke() -> tuple[str, str]:
        token = own_token()
        with world.services.storage.transaction() as tx:
            _, claims = verifier.verify_claims(tx, token)
        world.identity.tokens.revoke_access(claims, actor=ACTOR)
        return token, str(claims["jti"])

    def remembered(jti: str) -> bool:
        with world.services.storage.transaction() as tx:
            return bool(tx.revocations.is_token_revoked(jti))

    first, first_jti = revoke()
    world.clock.advance(minutes=14)  # the first token has a minute left
    revoke()
    assert remembered(first_jti) and own_reason(world, first) == "revoked_token"
    world.clock.advance(hours=2)  # the first token expired long ago
    revoke()
    assert not remembered(first_jti)
    assert own_reason(world, first) == "expired_token"


def test_leeway_above_60_seconds_is_clamped_to_60() -> None:
    from datetime import UTC, datetime

    from bastion.crypto.jwt import InvalidJwtError, check_claims

    now = datetime(2026, 1, 1, tzinfo=UTC)
    claims = {"iss": ISSUER, "exp": int(now.timestamp()) - 61}
    with pytest.raises(InvalidJwtError) as caught:
        check_claims(claims, issuer=ISSUER, audience=None, now=now, leeway_seconds=3600)
    assert caught.value.reason == "expired_token"


def test_token_that_cannot_be_valid_is_refused_before_any_transaction(
    world: World, own_token: Callable[..., str]
) -> None:
    """Screening (no I/O): a token that does not parse, or names an issuer bastion does not
    know, is refused without a unit of work; a parseable one from a known issuer goes on to
    `check` (the slow path), which verifies its signature."""
    forged = own_token(sub="usr_forged")

    def no_database() -> None:
        raise AssertionError("a unit of work was opened while screening")

    world.services.storage.transaction = no_database  # type: ignore[assignment,method-assign]

    def cached(token: str) -> Verdict | None:
        facts = RequestFacts("GET", "/api/patterns", token, "127.0.0.1", "pytest", "req_1")
        return world.services.access.check_cached(facts)

    for token, why in (
        (forge({"alg": "RS256"}, {"iss": "https://other.test"}), "unknown_issuer"),
        ("eyJub3QganNvbg.e30.", "malformed_token"),
    ):
        verdict = cached(token)
        assert verdict is not None and isinstance(verdict.error, AuthenticationError)
        assert verdict.error.reason == why
    assert cached(forged) is None


def test_own_token_forged_or_expired_is_refused_before_any_transaction(
    world: World, own_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its key already held, a token's signature and claims are checked before the unit
    of work (a flood of forged tokens never holds the write lock), and a good token's
    signature is checked once, not again inside the transaction."""
    from bastion.services import token_verifier

    checks = signature_checks(monkeypatch, token_verifier)
    good, forged, expiring = own_token(), own_token(sub="usr_forged"), own_token()
    assert world.services.access.identify(good).identity.principal.name == "admin@example.com"
    assert checks == [good]
    world.clock.advance(minutes=16)

    def no_database() -> None:
        raise AssertionError("a unit of work was opened for a token that cannot be valid")

    monkeypatch.setattr(world.services.storage, "transaction", no_database)
    for token, why in ((forged, "bad_signature"), (expiring, "expired_token")):
        with pytest.raises(AuthenticationError) as caught:
            world.services.access.identify(token)
        assert caught.value.reason == why


def test_external_token_forged_or_expired_is_refused_before_any_transaction(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prepare` (run before the unit of work) checks the signature and claims of an external
    token with a key already fetched; `verify` does not check the signature again."""
    from bastion.services import external_jwt

    verifier, _, _ = external
    checks = signature_checks(monkeypatch, external_jwt)
    good = idp_token(idp_key, idp_claims(world))
    assert verify_with(world, verifier, good).principal.name == "pat@example.com"
    assert checks == [good]
    head, _, signature = idp_token(idp_key, idp_claims(world)).split(".")
    forged = f"{head}.{b64(json.dumps(idp_claims(world, sub='root')).encode())}.{signature}"
    expired = idp_token(idp_key, idp_claims(world, exp=int(world.clock.now().timestamp()) - 120))
    for token, why in ((forged, "bad_signature"), (expired, "expired_token")):
        with pytest.raises(AuthenticationError) as caught:
            verifier.prepare(token)  # no transaction is open here
        assert caught.value.reason == why


def test_own_tokens_are_identified_reading_only_external_ones_in_a_unit_that_writes(
    world: World,
    external: Any,
    idp_key: rsa.RSAPrivateKey,
    own_token: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bastion's own tokens are identified in a read-only unit of work (it never waits for or
    blocks a writer); an external issuer's in one that writes, since it may provision the user
    and sync groups."""
    token = own_token()
    storage = world.services.storage
    units: list[str] = []
    for name in ("transaction", "read_only"):

        def counting(original: Any = getattr(storage, name), name: str = name) -> Any:
            units.append(name)
            return original()

        monkeypatch.setattr(storage, name, counting)
    assert world.services.access.identify(token).identity.principal.name == "admin@example.com"
    assert units == ["read_only"]
    verifier, _, _ = external
    federated = AccessService(
        storage=storage,
        authenticator=Authenticator([JwtBearerVerifier([verifier])]),
        authorizer=world.services.authorizer,
        routes=world.services.access._routes,
        public_paths=world.services.access._public,
        clock=world.clock,
    )
    units.clear()
    caller = federated.identify(idp_token(idp_key, idp_claims(world)))
    assert caller.identity.principal.name == "pat@example.com"  # provisioned
    assert units == ["transaction"]


def test_external_user_provisioned_under_a_leftover_binding_or_rule_name_does_not_inherit_it(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey
) -> None:
    # What an older bastion left when it deleted pat@example.com without its bindings.
    stale = RoleBinding(
        "bnd_left", world.tenant.id, SubjectType.USER, "pat@example.com", "admin", world.clock.now()
    )
    pat = ("pat@example.com",)
    rule = ResourceRuleRecord(
        "rul_left", world.tenant.id, "patterns", "vault", pat, (), (), stale.created_at
    )
    with world.services.storage.transaction() as tx:
        tx.bindings.create(stale)
        tx.resource_rules.create(rule)
    verifier, _, _ = external
    authenticated = verify_with(world, verifier, idp_token(idp_key, idp_claims(world)))
    assert authenticated.principal.name == "pat@example.com"  # provisioned now
    with world.services.storage.transaction() as tx:
        assert tx.bindings.for_subject(world.tenant.id, SubjectType.USER, "pat@example.com") == []
        assert tx.resource_rules.get(world.tenant.id, "rul_left").allowed_users == ()
        created = tx.audit.query(AuditQuery(action="user.create", limit=1000))[-1]
    assert created.details == {
        "provisioned": "jwt",
        "staleBindingsDeleted": ["bnd_left"],
        "staleRulesUpdated": ["rul_left"],
    }


@pytest.mark.parametrize(
    "subject", ["pat\x00admin@example.com", "pat\n@example.com", "ops/pat", "p" * 255]
)
def test_a_subject_that_breaks_the_rules_of_a_name_is_never_provisioned(
    world: World, external: Any, idp_key: rsa.RSAPrivateKey, subject: str
) -> None:
    """The issuer vouches for who the subject is, not that it is a name bastion can hold: one
    with a NUL or another control character, a slash or over 254 characters is refused."""
    verifier, _, _ = external
    token = idp_token(idp_key, idp_claims(world, sub=subject))
    assert reason(world, verifier, token) == "invalid_subject"
    listed = world.identity.directory.list(tenant_name="default", kind=PrincipalKind.USER)
    assert [p.name for p, _ in listed] == ["admin@example.com"]
