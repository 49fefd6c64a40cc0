"""The golden-case harness: a YAML file declares a model and cases; each case runs through the
real pipeline (API key → route → authorize) or the check service, and asserts the decision,
its reasons and the audit event it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bastion.backends.memory import MemoryStorage
from bastion.config import parse_config
from bastion.core.model import (
    CustomRole,
    Group,
    Principal,
    PrincipalKind,
    ResourceRuleRecord,
    RoleBinding,
    SubjectType,
    Tenant,
)
from bastion.errors import BastionError
from bastion.gateway.problems import status_for
from bastion.services.access import RequestFacts
from bastion.services.authz_checks import CheckQuery, check_event
from bastion.services.request_events import request_event
from bastion.wiring import Services, build_services

GOLDEN = Path(__file__).parent / "golden"
PEPPER = "p" * 40
ACTOR = {"type": "operator", "id": "golden", "via": "test"}


@dataclass
class GoldenClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


def when(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class World:
    services: Services
    clock: GoldenClock
    keys: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)


def _seed_tenant(services: Services, name: str, spec: dict[str, Any], now: datetime) -> None:
    with services.storage.transaction() as tx:
        tenant = Tenant(f"ten-{name}", name, now)
        tx.tenants.create(tenant)
        ids: dict[str, str] = {}
        for item in spec.get("principals", []):
            principal = Principal(
                id=f"pri-{name}-{item['name']}",
                tenant_id=tenant.id,
                kind=PrincipalKind(item.get("kind", "user")),
                name=item["name"],
                created_at=now,
            )
            tx.principals.create(principal)
            ids[principal.name] = principal.id
        for group_name, members in spec.get("groups", {}).items():
            group = Group(f"grp-{name}-{group_name}", tenant.id, group_name, now)
            tx.groups.create(group)
            for member in members:
                tx.groups.add_member(tenant.id, group.id, ids[member], at=now)
        for index, role in enumerate(spec.get("roles", [])):
            tx.roles.create(
                CustomRole(
                    f"rol-{name}-{index}",
                    tenant.id,
                    role["name"],
                    tuple(role.get("permissions", ())),
                    tuple(role.get("inherits", ())),
                    now,
                    now,
                )
            )
        for index, binding in enumerate(spec.get("bindings", [])):
            expires = binding.get("expires")
            tx.bindings.create(
                RoleBinding(
                    binding.get("id", f"b{index}"),
                    tenant.id,
                    SubjectType(binding["subject"]["type"]),
                    binding["subject"]["name"],
                    binding["role"],
                    now,
                    when(expires) if expires else None,
                )
            )
        for index, rule in enumerate(spec.get("rules", [])):
            resource_type, _, resource_id = rule["resource"].partition("/")
            tx.resource_rules.create(
                ResourceRuleRecord(
                    rule.get("id", f"r{index}"),
                    tenant.id,
                    resource_type,
                    resource_id,
                    tuple(rule.get("allowedUsers", ())),
                    tuple(rule.get("allowedRoles", ())),
                    tuple(rule.get("actions", ())),
                    now,
                )
            )


def build_world(doc: dict[str, Any], tmp: Path) -> World:
    clock = GoldenClock(when(doc["now"]))
    text = (doc.get("config", "") or "").replace("{dir}", str(tmp))
    for filename, body in (doc.get("policies") or {}).items():
        (tmp / filename).write_text(body)
    config = parse_config(
        f"{text}\n" if text else "{}\n", source="golden", environ={}, base_dir=tmp
    )
    config = config.model_copy(
        update={"security": config.security.model_copy(update={"pepper": _pepper()})}
    )
    services = build_services(config, clock=clock, storage=MemoryStorage())
    for name, spec in doc.get("tenants", {}).items():
        _seed_tenant(services, name, spec or {}, clock.moment)
    return World(services, clock)


def _pepper() -> Any:
    from pydantic import SecretStr

    return SecretStr(PEPPER)


def key_for(world: World, tenant: str, principal: str, scopes: tuple[str, ...]) -> str:
    slot = (tenant, principal, scopes)
    if slot not in world.keys:
        world.keys[slot] = world.services.api_keys.create(
            tenant_name=tenant,
            owner_name=principal,
            name=f"golden-{len(world.keys)}",
            scopes=list(scopes),
            expires_at=None,
            actor=ACTOR,
        ).secret
    return world.keys[slot]


def subset(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Differences where ``actual`` does not contain ``expected`` (dicts compared by key)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        problems: list[str] = []
        for key, value in expected.items():
            problems += subset(value, actual.get(key), f"{where}.{key}")
        return problems
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def run_case(world: World, case: dict[str, Any]) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(effect, reasons, audit event as a dict) for one case."""
    if "at" in case:
        world.clock.moment = when(case["at"])
    tenant = case.get("tenant", "default")
    scopes = tuple(case.get("scopes", ["admin"]))
    if "request" in case:
        request = case["request"]
        key = key_for(world, tenant, case["principal"], scopes)
        facts = RequestFacts(
            request["method"],
            request["path"],
            key,
            request.get("ip", "127.0.0.1"),
            "golden",
            "req_golden",
        )
        verdict = world.services.access.check(facts)
        status = 200 if verdict.error is None else status_for(verdict.error)[0]
        event = request_event(
            verdict, status=status, now=world.clock.moment, default_tenant="default"
        )
        effect = "allow" if verdict.allowed else "deny"
        reasons = verdict.reasons
    else:
        check = case["check"]
        query = CheckQuery(
            principal=case["principal"],
            action=check["action"],
            resource=check["resource"],
            tenant=tenant,
            target=check.get("target"),
            scopes=tuple(case["scopes"]) if "scopes" in case else None,
            client_ip=check.get("ip"),
            mfa=bool(check.get("mfa", False)),
        )
        try:
            result = world.services.authz.checks.check(query)
        except BastionError as exc:
            return "error", (exc.code,), {}
        effect, reasons = result.decision.effect.value, result.decision.reasons
        event = check_event(result, actor=ACTOR, now=world.clock.moment)
    as_dict = {
        "action": event.action,
        "outcome": event.outcome,
        "tenant": event.tenant,
        "actor": event.actor,
        "resource": event.resource,
        "details": event.details,
    }
    return effect, tuple(reasons), as_dict


def golden_cases() -> list[tuple[Path, int, str]]:
    found = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for index, case in enumerate(doc["cases"]):
            found.append((path, index, case["name"]))
    return found
