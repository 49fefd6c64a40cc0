"""Authorization: tenant → RBAC ∩ scopes → resource rules → Cedar, on compiled models.

Per-principal permission sets are compiled on first use and cached; every cache is dropped
when the authorization version moves (any change of roles, bindings or rules, here or on
another replica: read from the database at most every ``poll_seconds``, and pushed through
Redis when it is configured). A decision never walks all roles or bindings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bastion.backends.protocols import UnitOfWork
from bastion.core.decision import Check, Decision, Effect
from bastion.core.engine import check_rbac, check_scopes, check_tenant, combine
from bastion.core.grants import BindingGrant, PrincipalAccess, ScopeIndex, compile_access
from bastion.core.model import Principal, PrincipalKind, SubjectType, Tenant
from bastion.core.rbac import BUILTIN_ROLES, Grant, RoleCatalog, compile_roles, decide
from bastion.core.resource_rules import check_rules
from bastion.core.routes import RouteMatch
from bastion.services.authz_model import (
    AuthzSettings,
    PlatformBinding,
    StaticBinding,
    TenantModel,
    load_tenant,
)

_new = tuple.__new__

__all__ = ["Authorizer", "AuthzContext", "AuthzRequest", "StaticBinding", "Subject"]


@dataclass(frozen=True, slots=True)
class AuthzContext:
    """Request facts Cedar policies may use (``context`` in a policy)."""

    time: datetime
    client_ip: str | None = None
    mfa: bool = False
    auth_method: str = ""
    route: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """One question: may the subject do ``action`` on ``resource`` (/``resource_id``)?

    ``permission`` is what RBAC and scopes check (a route may require another permission than
    its own ``resource:action``); rules and Cedar see ``resource``, ``resource_id``, ``action``.
    """

    resource: str
    action: str
    context: AuthzContext
    resource_id: str | None = None
    permission: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """A principal resolved for authorization: its tenant's model, its groups, its access."""

    principal: Principal
    tenant: TenantModel
    groups: tuple[str, ...]
    access: PrincipalAccess


class PolicyEvaluator(Protocol):
    def evaluate(
        self,
        subject: Subject,
        request: AuthzRequest,
        *,
        tenant: str,
        roles: frozenset[str],
    ) -> Check | None:
        """The ``cedar`` stage, or None when no policy set is in force."""


class Authorizer:
    """Decides with compiled roles, stored and configured bindings, rules and policies."""

    def __init__(
        self,
        *,
        roles: RoleCatalog | None = None,
        static_bindings: Sequence[StaticBinding] = (),
        default_role: str | None = None,
        settings: AuthzSettings | None = None,
        policies: PolicyEvaluator | None = None,
        poll_seconds: float = 0.0,
        capacity: int = 100_000,
    ) -> None:
        if settings is None:
            defined = roles.definitions if roles is not None else {}
            custom = [d for n, d in defined.items() if n not in BUILTIN_ROLES]
            settings = AuthzSettings(
                roles=custom, bindings=tuple(static_bindings), default_role=default_role
            )
        self.settings = settings
        self.roles = compile_roles(settings.roles)
        self.policies = policies
        self._poll_seconds = poll_seconds
        self._capacity = capacity
        self._lock = threading.Lock()
        self._generation = 0
        self._version = -1
        self._polled_at = float("-inf")
        self._tenants: dict[str, TenantModel] = {}
        self._access: dict[tuple[str, str, str, str, tuple[str, ...]], PrincipalAccess] = {}
        self._scopes: dict[tuple[str, ...], ScopeIndex] = {}

    # -- caches ---------------------------------------------------------------------------

    def broadcast_health(self, subscribed: bool) -> None:
        """While a change broadcast is subscribed, the stored version is a once-a-second
        safety net; without one it is read on every decision."""
        self._poll_seconds = 1.0 if subscribed else 0.0

    def is_fresh(self) -> bool:
        """True while a subscribed change broadcast keeps the compiled models current (the
        stored version was read less than ``poll_seconds`` ago)."""
        return time.monotonic() - self._polled_at < self._poll_seconds

    @property
    def generation(self) -> int:
        """Moves with every invalidation (a change here, a broadcast, a new stored version)."""
        return self._generation

    def invalidate(self) -> None:
        """Drop every compiled model (after a local change, or a broadcast from a replica)."""
        with self._lock:
            self._generation += 1
            self._tenants = {}
            self._access = {}

    def _sync(self, tx: UnitOfWork) -> int:
        """Poll the stored version (at most every ``poll_seconds``); the cache generation."""
        if time.monotonic() - self._polled_at >= self._poll_seconds:
            self.observe_version(tx.authz_versions.current())
        return self._generation

    def observe_version(self, version: int) -> None:
        """The stored version as just read (here or by a caller): a new one drops the caches."""
        self._polled_at = time.monotonic()
        if version != self._version:
            self.invalidate()
            self._version = version

    def tenant_model(self, tx: UnitOfWork, tenant: Tenant) -> TenantModel:
        generation = self._sync(tx)
        model = self._tenants.get(tenant.id)
        if model is None:
            model = load_tenant(tx, self.settings, tenant)
            if generation == self._generation:
                self._tenants[tenant.id] = model
        return model

    def subject(
        self, tx: UnitOfWork, principal: Principal, *, tenant: Tenant, now: datetime
    ) -> Subject:
        """Resolve ``principal`` (of ``tenant``) with its compiled access at ``now``."""
        model = self.tenant_model(tx, tenant)
        generation = self._generation
        groups = tuple(tx.groups.groups_of(tenant.id, principal.id))
        # The id too: a principal created under a deleted one's name must never meet the
        # deleted one's compiled access, even before this replica sees the new version.
        key = (tenant.id, principal.id, str(principal.kind), principal.name, groups)
        access = self._access.get(key)
        if access is None or not access.fresh(now):
            offered = self._offered(tx, model, principal, groups)
            access = compile_access(
                offered, model.catalog, now=now, default_role=self.settings.default_role
            )
            if generation == self._generation:
                if len(self._access) >= self._capacity:
                    self._access = {}
                self._access[key] = access
        return Subject(principal, model, groups, access)

    def _offered(
        self, tx: UnitOfWork, model: TenantModel, principal: Principal, groups: tuple[str, ...]
    ) -> list[BindingGrant]:
        tenant_id = model.tenant.id
        kind = SubjectType(principal.kind.value)
        offered = [
            BindingGrant(b.role, f"binding {b.id}", b.expires_at)
            for b in tx.bindings.for_subject(tenant_id, kind, principal.name)
        ]
        offered.extend(model.configured(kind, principal.name))
        for group in groups:
            offered.extend(
                BindingGrant(b.role, f"binding {b.id} (group {group})", b.expires_at)
                for b in tx.bindings.for_subject(tenant_id, SubjectType.GROUP, group)
            )
            offered.extend(
                BindingGrant(g.role, f"{g.via} (group {group})", g.expires_at)
                for g in model.configured(SubjectType.GROUP, group)
            )
        return offered

    def scope_index(self, scopes: Sequence[str] | None) -> ScopeIndex | None:
        if scopes is None:
            return None
        key = tuple(scopes)
        index = self._scopes.get(key)
        if index is None:
            if len(self._scopes) >= self._capacity:
                self._scopes = {}
            index = self._scopes[key] = ScopeIndex(key)
        return index

    # -- decisions ------------------------------------------------------------------------

    def authorize(
        self,
        subject: Subject,
        request: AuthzRequest,
        *,
        scopes: Sequence[str] | None,
        target: TenantModel | None = None,
    ) -> Decision:
        """The decision for one request; pure (no I/O besides the policy engine)."""
        home = subject.tenant
        access = subject.access
        if target is None or target.tenant.id == home.tenant.id:
            target = home
            tenant_check = home.own
        else:
            access, platform_via = self._platform_access(subject, target, request.context.time)
            tenant_check = check_tenant(
                home=home.tenant.name, target=target.tenant.name, platform_via=platform_via
            )
        permission = request.permission
        if permission is None:
            resource, action = request.resource, request.action
        else:
            resource, _, action = permission.partition(":")
        rules = None
        applying = target.rules.rules_for(request.resource, request.resource_id)
        if applying:
            rules = check_rules(
                applying,
                principal=subject.principal.name,
                roles=access.roles,
                action=request.action,
                is_user=subject.principal.kind is PrincipalKind.USER,
            )
        cedar = None
        if self.policies is not None and tenant_check.passed:
            cedar = self.policies.evaluate(
                subject, request, tenant=target.tenant.name, roles=access.roles
            )
        rbac = check_rbac(access, resource, action)
        scope_check = None
        if scopes is not None:
            scope_check = check_scopes(self.scope_index(scopes), resource, action)
        if rules is None and cedar is None:
            # The common case, without the general combination (a few microseconds matter).
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (see core/engine.py).
            if scope_check is None:
                allowed = rbac.passed and tenant_check.passed
                return _new(
                    Decision,
                    (
                        Effect.ALLOW if allowed else Effect.DENY,
                        tenant_check.reasons + rbac.reasons,
                        (tenant_check, rbac),
                    ),
                )
            allowed = rbac.passed and scope_check.passed and tenant_check.passed
            return _new(
                Decision,
                (
                    Effect.ALLOW if allowed else Effect.DENY,
                    tenant_check.reasons + rbac.reasons + scope_check.reasons,
                    (tenant_check, rbac, scope_check),
                ),
            )
        return combine(tenant=tenant_check, rbac=rbac, scopes=scope_check, rules=rules, cedar=cedar)

    def _platform_access(
        self, subject: Subject, target: TenantModel, now: datetime
    ) -> tuple[PrincipalAccess, str | None]:
        principal = subject.principal
        kinds: dict[SubjectType, tuple[str, ...]] = {
            SubjectType(principal.kind.value): (principal.name,)
        }
        kinds[SubjectType.GROUP] = subject.groups
        found: list[PlatformBinding] = [
            b
            for b in self.settings.platform_bindings
            if b.home == subject.tenant.tenant.name
            and b.subject_name in kinds.get(b.subject_type, ())
            and b.reaches(target.tenant.name)
            and (b.expires_at is None or now < b.expires_at)
        ]
        offered = [BindingGrant(b.role, b.via, b.expires_at) for b in found]
        access = compile_access(offered, target.catalog, now=now)
        return access, (found[0].via if found else None)

    # -- the original RBAC ∩ scopes interface, kept for callers that hold only grants ---------

    def grants(
        self, tx: UnitOfWork, principal: Principal, *, tenant_name: str, now: datetime
    ) -> list[Grant]:
        """Every role that reaches ``principal`` now, each with the binding that brought it."""
        tenant = tx.tenants.get(principal.tenant_id)
        return list(self.subject(tx, principal, tenant=tenant, now=now).access.grants)

    def decide(
        self, grants: Sequence[Grant], *, scopes: Sequence[str] | None, resource: str, action: str
    ) -> Decision:
        """RBAC ∩ scopes over the configured roles only (no tenant roles, rules or policies)."""
        return decide(
            grants=grants, roles=self.roles, scopes=scopes, resource=resource, action=action
        )


def route_request(
    permission: str,
    *,
    match: RouteMatch | None,
    now: datetime,
    client_ip: str | None,
    method: str,
    path: str,
    auth_method: str,
    mfa: bool,
) -> AuthzRequest:
    """The question a routed request (proxy, forward-auth, admin API) asks."""
    resource, _, action = permission.partition(":")
    route: dict[str, str] = {"method": method, "path": path}
    resource_id = None
    if match is not None:
        resource, action = match.route.resource, match.route.action
        resource_id = match.resource_id
        route["template"] = match.route.path
        route["event"] = match.route.event
    context = AuthzContext(
        time=now, client_ip=client_ip, mfa=mfa, auth_method=auth_method, route=route
    )
    return AuthzRequest(resource, action, context, resource_id, permission)
