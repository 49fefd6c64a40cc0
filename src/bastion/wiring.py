"""Builds bastion's object graph from a loaded configuration: the one place objects are wired.

The CLI and `bastion.gateway.app.build_app` both start here; nothing else constructs services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.backends import MEMORY_URL, open_storage
from bastion.backends.protocols import Storage
from bastion.config import BastionConfig
from bastion.core.model import PrincipalKind
from bastion.core.netrules import Allowlist
from bastion.core.routes import PathSet, RouteSpec, RouteTable
from bastion.crypto.keys import KeyedHasher, WeakPepperError
from bastion.errors import ConfigError, ConfigIssue, PolicyError
from bastion.services.access import AccessService, CertificateLogin
from bastion.services.apikeys import ApiKeyService
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer
from bastion.services.authz_config import (
    AuthzServices,
    ModelBus,
    authz_settings_from,
    build_authz,
    policy_engine_from,
)
from bastion.services.clock import Clock, SystemClock
from bastion.services.revocation import RevocationState, Revoker
from bastion.wiring_audit import checkpoint_signer_from, field_masker_from, recording_storage
from bastion.wiring_identity import IdentityServices, broadcast_from, build_identity
from bastion.wiring_tls import check_tls_files, tls_options


@dataclass(frozen=True)
class Services:
    config: BastionConfig
    storage: Storage
    clock: Clock
    hasher: KeyedHasher
    api_keys: ApiKeyService
    authorizer: Authorizer
    access: AccessService
    authz: AuthzServices
    identity: IdentityServices


def pepper_from(config: BastionConfig) -> bytes:
    """The pepper's bytes; `hasher_from` has already refused a missing or weak one."""
    pepper = config.security.pepper
    assert pepper is not None
    return pepper.get_secret_value().encode()


def hasher_from(config: BastionConfig) -> KeyedHasher:
    pepper = config.security.pepper
    if pepper is None:
        raise ConfigError(
            [
                ConfigIssue(
                    "security.pepper",
                    "required to store credentials; `bastion init` writes one"
                    " (file:bastion.pepper)",
                )
            ]
        )
    try:
        return KeyedHasher(pepper.get_secret_value().encode())
    except WeakPepperError as exc:
        raise ConfigError([ConfigIssue("security.pepper", str(exc))]) from None


def authorizer_from(config: BastionConfig) -> Authorizer:
    rbac = config.security.rbac
    if not rbac.enabled:
        raise ConfigError(
            [
                ConfigIssue(
                    "security.rbac.enabled",
                    "bastion always authorizes; to let every principal do everything, "
                    "set security.rbac.defaultRole: admin instead",
                )
            ]
        )
    return Authorizer(settings=authz_settings_from(config))


def route_table_from(config: BastionConfig) -> RouteTable:
    return RouteTable(
        [
            RouteSpec(
                method=str(route.method),
                path=route.path,
                resource=route.resource,
                action=route.action,
                permission=route.effective_permission,
                event=route.effective_event,
                resource_id=route.id,
                allowlist=Allowlist.of(route.ip_allowlist or (), source=f"gateway.routes[{i}]"),
            )
            for i, route in enumerate(config.gateway.routes)
        ]
    )


def certificate_login_from(config: BastionConfig) -> CertificateLogin | None:
    """Verified client certificates name service accounts, and agents when agentAuth allows."""
    security = config.security
    if not security.mtls.enabled or security.mtls.client_auth == "none":
        return None
    kinds = {PrincipalKind.SERVICE_ACCOUNT}
    if security.agent_auth.method in ("mtls", "both"):
        kinds.add(PrincipalKind.AGENT)
    return CertificateLogin(tenant=security.default_tenant, kinds=frozenset(kinds))


def authz_bus_from(config: BastionConfig) -> ModelBus | None:
    """The compiled-model change broadcast over Redis, when ``storage.redisUrl`` is set."""
    if config.storage.redis_url is None:
        return None
    from bastion.backends.redis.authz_bus import RedisModelBroadcast

    return RedisModelBroadcast(config.storage.redis_url, prefix=config.storage.redis_prefix)


def check_startup(config: BastionConfig, *, config_dir: Path) -> None:
    """Every refusal of `bastion serve` that needs neither the network nor the database and
    changes nothing: the pepper, RBAC switched off, the audit signing key, the policy files
    (read, parsed and validated against the schema) and the TLS settings and files.
    ``config_dir`` is the directory of bastion.yaml. `bastion config validate` runs exactly
    this, so it says ok only when serve would start as far as configuration goes.

    Raises ConfigError with every issue found (one per key: a missing pepper is one issue).
    """
    checks: list[Callable[[], object]] = [
        lambda: hasher_from(config),
        lambda: authorizer_from(config),
        lambda: checkpoint_signer_from(config),
        lambda: field_masker_from(config),
        lambda: first_policy_set(config),
        lambda: tls_options(config, config_dir=config_dir),
        lambda: check_tls_files(config),
    ]
    issues: list[ConfigIssue] = []
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            reported = {issue.path for issue in issues}
            issues.extend(issue for issue in exc.issues if issue.path not in reported)
    if issues:
        raise ConfigError(issues)


def first_policy_set(config: BastionConfig) -> None:
    """Load ``security.policies`` once, as serve does; ConfigError naming the key if it fails."""
    try:
        # The engine writes to storage only when it reloads; this one is dropped at once.
        policy_engine_from(config, storage=open_storage(MEMORY_URL), clock=SystemClock())
    except PolicyError as exc:
        schema = config.security.policies.schema_file
        key = "schema" if schema is not None and str(exc).startswith(f"{schema}:") else "files"
        raise ConfigError([ConfigIssue(f"security.policies.{key}", str(exc))]) from None


def build_services(
    config: BastionConfig, *, clock: Clock | None = None, storage: Storage | None = None
) -> Services:
    clock = clock or SystemClock()
    hasher = hasher_from(config)
    authorizer = authorizer_from(config)
    storage = recording_storage(storage or open_storage(config.storage.url), config, clock=clock)
    revoker = Revoker(RevocationState(), broadcast_from(config))
    api_keys = ApiKeyService(storage=storage, hasher=hasher, clock=clock, revoker=revoker)
    identity = build_identity(
        config,
        storage=storage,
        clock=clock,
        hasher=hasher,
        pepper=pepper_from(config),
        api_keys=api_keys,
        revoker=revoker,
        is_role=lambda name: name in authorizer.roles,
    )
    access = AccessService(
        storage=storage,
        authenticator=Authenticator([api_keys, *identity.verifiers]),
        authorizer=authorizer,
        routes=route_table_from(config),
        public_paths=PathSet(list(config.gateway.public_paths)),
        clock=clock,
        certificates=certificate_login_from(config),
        revocation=revoker.state,
    )
    authz = build_authz(
        config, storage=storage, clock=clock, authorizer=authorizer, bus=authz_bus_from(config)
    )
    return Services(
        config, storage, clock, hasher, api_keys, authorizer, access, authz=authz, identity=identity
    )
