"""Wires the identity services (directory, groups, passwords, logins, tokens, agents, JWT
verifiers, revocation broadcast) from configuration; called by `bastion.wiring.build_services`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.backends.protocols import Storage
from bastion.config import BastionConfig
from bastion.config.models_identity import ThrottleConfig
from bastion.core.lockout import ThrottlePolicy
from bastion.core.password_policy import PasswordPolicy
from bastion.crypto.keys import KeyedHasher
from bastion.crypto.passwords import PasswordHasher
from bastion.crypto.seal import Sealer
from bastion.services.agents import AgentService
from bastion.services.apikeys import ApiKeyService
from bastion.services.authn import CredentialVerifier
from bastion.services.clock import Clock
from bastion.services.directory import DirectoryService
from bastion.services.exchange import TokenExchange
from bastion.services.external_jwt import ExternalJwtSettings, ExternalJwtVerifier
from bastion.services.groups import GroupService
from bastion.services.login import LoginService
from bastion.services.passwords import HashingPool, PasswordService
from bastion.services.revocation import NullBroadcast, RevocationBroadcast, RevocationState, Revoker
from bastion.services.signing_keys import SEAL_PURPOSE, SigningKeys
from bastion.services.token_verifier import IssuedTokenVerifier, IssuerVerifier, JwtBearerVerifier
from bastion.services.tokens import TokenService, TokenSettings


@dataclass
class IdentityServices:
    revoker: Revoker
    directory: DirectoryService
    groups: GroupService
    passwords: PasswordService
    logins: LoginService
    hashing: HashingPool
    signing_keys: SigningKeys
    tokens: TokenService
    exchange: TokenExchange
    issued_tokens: IssuedTokenVerifier
    agents: AgentService
    verifiers: list[CredentialVerifier]
    issuer: str
    closers: list[Callable[[], None]] = field(default_factory=list)

    def start_listening(self) -> None:
        """Start the revocation broadcast listener, if one is configured (`bastion serve`)."""
        listen = getattr(self.revoker.broadcast_impl, "listen", None)
        if listen is not None:
            state = self.revoker.state
            listen(on_epoch=state.observe, on_health=state.listening)

    def close(self) -> None:
        for closer in self.closers:
            closer()


def issuer_from(config: BastionConfig) -> str:
    tokens = config.security.authentication.tokens
    if tokens.issuer is not None:
        return tokens.issuer.rstrip("/")
    return f"http://{config.gateway.listen}"


def broadcast_from(config: BastionConfig) -> RevocationBroadcast:
    if config.storage.redis_url is None:
        return NullBroadcast()
    from bastion.backends.redis.revocation import RedisRevocationBroadcast

    return RedisRevocationBroadcast(config.storage.redis_url, prefix=config.storage.redis_prefix)


def _throttle(policy: ThrottleConfig) -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures=policy.max_failures,
        window=policy.window,
        base_lockout=policy.base_lockout,
        max_lockout=policy.max_lockout,
    )


def password_policy_from(config: BastionConfig) -> PasswordPolicy:
    rules = config.security.authentication.passwords
    return PasswordPolicy(
        min_length=rules.min_length,
        require_uppercase=rules.require_uppercase,
        require_lowercase=rules.require_lowercase,
        require_digits=rules.require_digits,
        require_symbols=rules.require_symbols,
        reject_common=rules.reject_common,
        history=rules.history,
        expiry=rules.expiry,
    )


def build_identity(
    config: BastionConfig,
    *,
    storage: Storage,
    clock: Clock,
    hasher: KeyedHasher,
    pepper: bytes,
    api_keys: ApiKeyService,
    revoker: Revoker,
    is_role: Callable[[str], bool],
) -> IdentityServices:
    authn = config.security.authentication
    issuer = issuer_from(config)
    keys = SigningKeys(
        storage=storage,
        sealer=Sealer(pepper, purpose=SEAL_PURPOSE),
        clock=clock,
        algorithm=authn.tokens.algorithm,
        token_lifetime=authn.tokens.access_token_ttl,
        audit_tenant=config.security.default_tenant,
        revoker=revoker,
    )
    settings = TokenSettings(
        issuer=issuer,
        access_ttl=authn.tokens.access_token_ttl,
        refresh_ttl=authn.tokens.refresh_token_ttl,
        session_lifetime=authn.tokens.session_lifetime,
    )
    tokens = TokenService(
        storage=storage, hasher=hasher, clock=clock, keys=keys, settings=settings, revoker=revoker
    )
    directory = DirectoryService(
        storage=storage, clock=clock, revoker=revoker, sessions=tokens.sessions
    )
    passwords = PasswordService(
        hasher=PasswordHasher(), policy=password_policy_from(config), sessions=tokens.sessions
    )
    logins = LoginService(
        storage=storage,
        clock=clock,
        passwords=passwords,
        account_policy=_throttle(authn.lockout.account),
        address_policy=_throttle(authn.lockout.address),
    )
    issued = IssuedTokenVerifier(keys=keys, clock=clock, issuer=issuer, state=revoker.state)
    issuers: list[IssuerVerifier] = [issued]
    if authn.jwt.enabled:
        issuers.append(external_verifier(config, clock=clock, state=revoker.state))
    agents = AgentService(
        storage=storage,
        hasher=hasher,
        clock=clock,
        directory=directory,
        api_keys=api_keys,
        is_role=is_role,
        default_ttl=config.security.agent_auth.token.ttl,
    )
    workers = max(1, (os.cpu_count() or 2) - 1)
    hashing = HashingPool(workers=workers)
    identity = IdentityServices(
        revoker=revoker,
        directory=directory,
        groups=GroupService(storage=storage, clock=clock),
        passwords=passwords,
        logins=logins,
        hashing=hashing,
        signing_keys=keys,
        tokens=tokens,
        exchange=TokenExchange(storage=storage, clock=clock, tokens=tokens, verifier=issued),
        issued_tokens=issued,
        agents=agents,
        verifiers=[JwtBearerVerifier(issuers)],
        issuer=issuer,
    )
    identity.closers.append(hashing.close)
    return identity


def external_verifier(
    config: BastionConfig, *, clock: Clock, state: RevocationState
) -> ExternalJwtVerifier:
    from bastion.backends.jwks_http import HttpJwksFetcher

    jwt = config.security.authentication.jwt
    assert jwt.issuer is not None and jwt.audience is not None and jwt.jwks_uri is not None
    settings = ExternalJwtSettings(
        issuer=jwt.issuer,
        audience=jwt.audience,
        jwks_uri=jwt.jwks_uri,
        algorithms=tuple(jwt.algorithms),
        leeway_seconds=jwt.leeway.total_seconds(),
        subject_claim=jwt.claims.subject,
        groups_claim=jwt.claims.groups,
        tenant_claim=jwt.claims.tenant,
        default_tenant=config.security.default_tenant,
        cache_ttl_seconds=jwt.jwks_cache_ttl.total_seconds(),
        refetch_cooldown_seconds=jwt.jwks_refetch_cooldown.total_seconds(),
        auto_provision=jwt.auto_provision,
    )
    return ExternalJwtVerifier(
        settings=settings, fetcher=HttpJwksFetcher(), clock=clock, state=state
    )


def seed_basic_auth_users(services: Any) -> int:
    """Create the ``security.authentication.basicAuth.users`` that do not exist yet, with their
    imported hashes (spec/001). Existing users are left alone. The number created."""
    from bastion.core.model import PrincipalKind
    from bastion.core.names import canonical_name
    from bastion.errors import NotFoundError

    config = services.config
    identity: IdentityServices = services.identity
    actor = {"type": "config", "id": "security.authentication.basicAuth", "via": "serve"}
    created = 0
    for entry in config.security.authentication.basic_auth.users:
        tenant_name = canonical_name(entry.tenant or config.security.default_tenant)
        with services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(tenant_name)
            try:
                tx.principals.get_by_name(tenant.id, canonical_name(entry.username))
                continue
            except NotFoundError:
                pass
            user = identity.directory.create_principal(
                tx,
                tenant=tenant,
                kind=PrincipalKind.USER,
                name=entry.username,
                display_name="",
                actor=actor,
            )
            identity.passwords.import_hash(
                tx, user, entry.password_hash.get_secret_value(), now=services.clock.now()
            )
            created += 1
    return created
