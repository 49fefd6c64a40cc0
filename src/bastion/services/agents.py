"""Agent registration (spec/000 "Agent Authentication"): single-use ``bat_…`` tokens that an
agent exchanges once for its own identity, role bindings and an API key.

A token's capabilities become the agent's scopes: ``classification`` stands for
``classification:*``, and a capability already written ``resource:action`` is kept as it is.
Single use holds under concurrency and across replicas: the claim is one conditional UPDATE
(`RegistrationTokenStore.claim`); the loser is refused and audited.

A token stays listed, in whatever state, until a week after it expired; each new token then
removes two older than that, so tokens do not pile up. A forgotten token is refused like an
unknown one (it had expired anyway); the audit trail keeps its creation and its use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bastion.backends.protocols import Storage
from bastion.core.apikeys import BASE62
from bastion.core.credentials import RegistrationToken
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, RoleBinding, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.core.rbac import parse_scopes
from bastion.crypto.keys import KeyedHasher, new_secret_token
from bastion.errors import AuthenticationError, ConflictError, RequestRejectedError
from bastion.services.apikeys import ApiKeyService, IssuedKey
from bastion.services.authz_model import AuthzSettings, bindings_naming
from bastion.services.clock import Clock
from bastion.services.directory import DirectoryService, record
from bastion.services.lookups import get_registration_token, get_tenant

REGISTRATION_PREFIX = "bat_"
_TOKEN_LENGTH = len(REGISTRATION_PREFIX) + 40
MAX_TTL = timedelta(days=30)
TOKEN_AFTERLIFE = timedelta(days=7)
_FORGET_PER_TOKEN = 2
_RESERVED = "name_reserved_by_configured_binding"
_NAMED_BY_POLICY = "name_reserved_by_cedar_policy"


def capability_scopes(capabilities: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The scopes a list of capabilities stands for; `RequestRejectedError` if one is invalid."""
    written = [c.strip() if ":" in c else f"{c.strip()}:*" for c in capabilities if c.strip()]
    try:
        return parse_scopes(written)
    except ValueError as exc:
        raise RequestRejectedError(f"capabilities: {exc}") from None


def is_well_formed_registration_token(presented: str) -> bool:
    tail = presented[len(REGISTRATION_PREFIX) :]
    return (
        presented.startswith(REGISTRATION_PREFIX)
        and len(presented) == _TOKEN_LENGTH
        and all(ch in BASE62 for ch in tail)
    )


@dataclass(frozen=True, slots=True)
class Registered:
    agent: Principal
    tenant: Tenant
    key: IssuedKey
    roles: tuple[str, ...]


class AgentService:
    def __init__(
        self,
        *,
        storage: Storage,
        hasher: KeyedHasher,
        clock: Clock,
        directory: DirectoryService,
        api_keys: ApiKeyService,
        is_role: Callable[[str], bool],
        default_ttl: timedelta,
    ) -> None:
        self._storage = storage
        self._hasher = hasher
        self._clock = clock
        self._directory = directory
        self._api_keys = api_keys
        self._is_role = is_role
        self._default_ttl = default_ttl

    def create_token(
        self,
        *,
        tenant_name: str,
        capabilities: list[str],
        roles: list[str],
        ttl: timedelta | None,
        actor: dict[str, Any],
    ) -> tuple[RegistrationToken, str]:
        """A registration token, shown once; only its keyed hash is stored."""
        scopes = capability_scopes(capabilities)
        unknown = [r for r in roles if not self._is_role(r)]
        if unknown:
            raise RequestRejectedError(f"unknown role {unknown[0]!r}")
        ttl = self._default_ttl if ttl is None else ttl  # a zero lifetime is refused
        if ttl <= timedelta(0) or ttl > MAX_TTL:
            raise RequestRejectedError("the token lifetime must be between 1s and 30d")
        now = self._clock.now()
        secret = new_secret_token(REGISTRATION_PREFIX)
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            token = RegistrationToken(
                id=new_id("reg"),
                tenant_id=tenant.id,
                token_hash=self._hasher.digest(secret),
                prefix=secret[:10],
                capabilities=scopes,
                roles=tuple(dict.fromkeys(roles)),
                created_at=now,
                expires_at=now + ttl,
            )
            tx.registration_tokens.create(token)
            before = now - TOKEN_AFTERLIFE
            tx.registration_tokens.forget_expired(before=before, limit=_FORGET_PER_TOKEN)
            details = {
                "capabilities": list(scopes),
                "roles": list(token.roles),
                "expires": token.expires_at.isoformat(),
            }
            resource = {"type": "registrationtoken", "id": token.id}
            record(
                tx,
                action="agent.token.create",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
                details=details,
            )
        return token, secret

    def list_tokens(self, *, tenant_name: str) -> list[RegistrationToken]:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            return tx.registration_tokens.list(tenant.id)

    def revoke_token(
        self, *, tenant_name: str, token_id: str, actor: dict[str, Any]
    ) -> RegistrationToken:
        """Revoke an unused token, with its ``agent.token.revoke`` event. A token revoked before
        is returned as it is, with no event; a used one is refused: its agent is what to disable.
        """
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            found = get_registration_token(tx, tenant, token_id)
            if found.revoked_at is not None:
                return found
            if found.used_at is not None:
                raise ConflictError(
                    f"registration token {token_id} was already used; disable or delete the "
                    "agent it registered instead"
                )
            token = tx.registration_tokens.revoke(tenant.id, token_id, at=now)
            resource = {"type": "registrationtoken", "id": token.id}
            record(
                tx,
                action="agent.token.revoke",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
            )
        return token

    def register(
        self,
        presented: str,
        *,
        name: str | None,
        display_name: str,
        client: dict[str, Any],
        audit_tenant: str,
        authz: AuthzSettings,
        policies_naming: Callable[[str], Sequence[str]] = lambda name: (),
    ) -> Registered:
        """Exchange a registration token for a new agent. Each token works exactly once.

        The holder is entitled to the token's roles only, so it may not take a name that a
        binding in bastion.yaml (``authz``) names for an agent, nor one that a Cedar policy
        names (``policies_naming``: the policies naming an agent of that name): that binding or
        policy would reach it too. Such a name is a `ConflictError`, audited, and leaves the
        token unused."""
        if not is_well_formed_registration_token(presented):
            raise AuthenticationError("malformed_registration_token")
        now = self._clock.now()
        agent_id = new_id("agt")
        agent_name = canonical_name(name) if name else f"agent-{agent_id[-12:]}"
        actor = {"type": "agent", "id": None, **client}
        reason: str | None = None
        refused: dict[str, Any] = {}
        registered: Registered | None = None
        with self._storage.transaction() as tx:
            token = tx.registration_tokens.find_by_hash(self._hasher.digest(presented))
            tenant_name = audit_tenant
            if token is None:
                reason = "unknown_registration_token"
            else:
                tenant = tx.tenants.get(token.tenant_id)
                tenant_name = tenant.name
                if token.revoked_at is not None:
                    reason = "revoked_registration_token"
                elif token.used_at is not None:
                    reason = "registration_token_already_used"
                elif now >= token.expires_at:
                    reason = "expired_registration_token"
                elif reserved := bindings_naming(
                    authz, tenant=tenant.name, subject_type=SubjectType.AGENT, name=agent_name
                ):
                    reason = _RESERVED
                    refused = {"name": agent_name, "reservedBy": reserved[0].via}
                elif policies := policies_naming(agent_name):
                    reason = _NAMED_BY_POLICY
                    refused = {"name": agent_name, "reservedBy": f"cedar:{policies[0]}"}
                elif not tx.registration_tokens.claim(token.id, agent_id=agent_id, at=now):
                    reason = "registration_token_already_used"
            if reason is not None or token is None:
                resource = {"type": "registrationtoken", "id": token.id if token else None}
                record(
                    tx,
                    action="agent.register",
                    outcome="failure",
                    tenant=tenant_name,
                    now=now,
                    actor=actor,
                    resource=resource,
                    details={"reason": reason, **refused},
                )
            else:
                agent = self._directory.create_principal(
                    tx,
                    tenant=tenant,
                    kind=PrincipalKind.AGENT,
                    name=agent_name,
                    display_name=display_name,
                    actor=actor,
                    details={"registrationToken": token.id},
                    principal_id=agent_id,
                )
                for role in token.roles:
                    tx.bindings.create(
                        RoleBinding(
                            new_id("bnd"), tenant.id, SubjectType.AGENT, agent.name, role, now
                        )
                    )
                key = self._api_keys.issue(
                    tx,
                    tenant=tenant,
                    owner=agent,
                    name=f"{agent.name}-credential",
                    scopes=token.capabilities,
                    expires_at=None,
                    actor={**actor, "id": agent.name},
                )
                details = {
                    "capabilities": list(token.capabilities),
                    "roles": list(token.roles),
                    "registrationToken": token.id,
                }
                resource = {"type": "agent", "id": agent.name}
                record(
                    tx,
                    action="agent.register",
                    tenant=tenant.name,
                    now=now,
                    actor={**actor, "id": agent.name},
                    resource=resource,
                    details=details,
                )
                registered = Registered(agent, tenant, key, token.roles)
        if reason in (_RESERVED, _NAMED_BY_POLICY):
            # A 409 like a taken name; what reserves it is for the audit log only.
            where = "a binding in bastion.yaml" if reason == _RESERVED else "a Cedar policy"
            raise ConflictError(f"the name {agent_name} is reserved by {where}; choose another")
        if reason is not None or registered is None:
            raise AuthenticationError(reason or "unknown_registration_token")
        return registered
