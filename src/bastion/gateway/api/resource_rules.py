"""``/v1/resource-rules``: per-instance allow lists (``allowedUsers`` / ``allowedRoles``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.core.model import ResourceRuleRecord
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.services.access import Caller
from bastion.wiring import Services

router = APIRouter(prefix="/v1/resource-rules", tags=["authorization"])


class RuleIn(Body):
    resource: str = Field(min_length=3, max_length=500, description="type/id")
    allowedUsers: list[str] = Field(default_factory=list)
    allowedRoles: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="Empty: every action")


class RuleOut(RuleIn):
    id: str
    created: datetime


def _out(rule: ResourceRuleRecord) -> RuleOut:
    return RuleOut(
        id=rule.id,
        resource=f"{rule.resource_type}/{rule.resource_id}",
        allowedUsers=list(rule.allowed_users),
        allowedRoles=list(rule.allowed_roles),
        actions=list(rule.actions),
        created=rule.created_at,
    )


@router.get("", response_model=list[RuleOut])
def list_rules(
    caller: Caller = Depends(require("rules", "read")),
    services: Services = Depends(services_dep),
) -> list[RuleOut]:
    return [_out(r) for r in services.authz.admin.list_rules(caller.identity.tenant)]


@router.get("/{rule_id}", response_model=RuleOut)
def get_rule(
    rule_id: str,
    caller: Caller = Depends(require("rules", "read")),
    services: Services = Depends(services_dep),
) -> RuleOut:
    return _out(services.authz.admin.get_rule(caller.identity.tenant, rule_id))


@router.post("", response_model=RuleOut, status_code=201)
async def create_rule(
    body: RuleIn,
    request: Request,
    caller: Caller = Depends(require("rules", "create")),
    services: Services = Depends(services_dep),
) -> RuleOut:
    rule = await run_in_threadpool(
        services.authz.admin.add_rule,
        tenant_name=caller.identity.tenant,
        resource=body.resource,
        allowed_users=body.allowedUsers,
        allowed_roles=body.allowedRoles,
        actions=body.actions,
        actor=actor_of(caller, request),
    )
    return _out(rule)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(
    rule_id: str,
    request: Request,
    caller: Caller = Depends(require("rules", "delete")),
    services: Services = Depends(services_dep),
) -> Response:
    await run_in_threadpool(
        services.authz.admin.delete_rule,
        tenant_name=caller.identity.tenant,
        rule_id=rule_id,
        actor=actor_of(caller, request),
    )
    return Response(status_code=204)
