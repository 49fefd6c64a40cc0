"""``/v1/resource-rules``: per-instance allow lists (``allowedUsers`` / ``allowedRoles``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.core.model import ResourceRuleRecord
from bastion.core.rbac import WILDCARD
from bastion.core.resource_rules import parse_resource
from bastion.errors import RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_within
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.paging import MAX_PAGE, PAGED_RESPONSES, PageLimit, one_page
from bastion.services.access import Caller
from bastion.services.authz_model import rule_from_record
from bastion.services.holdings import RuleAdmission
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
        resource=_resource(rule),
        allowedUsers=list(rule.allowed_users),
        allowedRoles=list(rule.allowed_roles),
        actions=list(rule.actions),
        created=rule.created_at,
    )


# A resource type holds no slash (`parse_resource` splits at the first), so the cursor
# reads back unambiguously.
RuleAfter = Annotated[
    str | None,
    Query(
        min_length=3,
        description="only rules after this one, `TYPE/ID`: the resource of the last rule of "
        "the previous page",
    ),
]


def _resource(rule: ResourceRuleRecord) -> str:
    return f"{rule.resource_type}/{rule.resource_id}"


def _after(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        return parse_resource(cursor)
    except ValueError:
        raise RequestRejectedError("query parameter after must be TYPE/ID") from None


@router.get("", response_model=list[RuleOut], responses=PAGED_RESPONSES)
def list_rules(
    response: Response,
    limit: PageLimit = MAX_PAGE,
    after: RuleAfter = None,
    caller: Caller = Depends(require("rules", "read")),
    services: Services = Depends(services_dep),
) -> list[RuleOut]:
    """The tenant's stored rules by resource type and id, in pages."""
    found = services.authz.admin.list_rules(
        caller.identity.tenant, after=_after(after), limit=limit + 1
    )
    return [_out(r) for r in one_page(found, limit, response, _resource)]


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
    """Lifting a rule lets in every holder of the resource's permissions, the caller among
    them: only a caller the rule admits, or one holding ``*:*``, may (`RuleAdmission`)."""
    stored = await run_in_threadpool(services.authz.admin.get_rule, caller.identity.tenant, rule_id)
    lifted = RuleAdmission(WILDCARD, WILDCARD, rule_from_record(stored))
    ensure_within(caller, [lifted], f"deleting rule {stored.id}")
    await run_in_threadpool(
        services.authz.admin.delete_rule,
        tenant_name=caller.identity.tenant,
        rule_id=rule_id,
        actor=actor_of(caller, request),
    )
    return Response(status_code=204)
