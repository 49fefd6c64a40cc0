"""``POST /v1/authz/check``: ask the engine about a principal of the caller's tenant, one
request or a batch; each answer carries its reasons and is audited as ``authz.check``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag, field_validator
from starlette.concurrency import run_in_threadpool

from bastion.core.rbac import parse_scopes, scope_permissions
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body, Flag
from bastion.services.access import Caller
from bastion.services.audit import AuditSink
from bastion.services.authz_checks import CheckQuery, CheckResult, check_event
from bastion.wiring import Services

router = APIRouter(prefix="/v1/authz", tags=["authorization"])


class ContextIn(Body):
    clientIp: str | None = None
    mfa: Flag = False
    authMethod: str = "api"


def _scope(scope: str) -> str:
    """One scope, read as a credential's is (blank ones are dropped with the list); the error
    says where it is (``scopes/1``) and what a scope looks like, not what was sent."""
    if scope.strip():
        try:
            scope_permissions(scope.strip())
        except ValueError:
            raise ValueError("must be a scope like patterns:read, patterns:* or admin") from None
    return scope


class CheckIn(Body):
    principal: str = Field(min_length=1, max_length=320)
    action: str = Field(min_length=1, max_length=200)
    resource: str = Field(min_length=1, max_length=500, description="type or type/id")
    scopes: list[Annotated[str, AfterValidator(_scope)]] | None = Field(
        default=None, description="A credential's scopes to narrow by (omit for none)"
    )
    context: ContextIn = Field(default_factory=ContextIn)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str] | None) -> list[str] | None:
        """The scopes as a credential holds them (`parse_scopes`: trimmed, de-duplicated); an
        empty list would be a credential bastion never issues, so it is a 400 too."""
        return None if scopes is None else list(parse_scopes(scopes))


class BatchIn(Body):
    requests: list[CheckIn] = Field(min_length=1, max_length=100)


def _form(body: Any) -> str:
    """A body with ``requests`` is a batch: it is checked as one, and errors say so."""
    return "batch" if isinstance(body, dict) and "requests" in body else "single"


CheckBody = Annotated[
    Annotated[CheckIn, Tag("single")] | Annotated[BatchIn, Tag("batch")], Discriminator(_form)
]


class StageOut(BaseModel):
    stage: str
    passed: bool | None
    reasons: list[str]


class CheckOut(BaseModel):
    effect: str
    allowed: bool
    principal: str
    action: str
    resource: str
    permission: str
    reasons: list[str]
    checks: list[StageOut]


class BatchOut(BaseModel):
    results: list[CheckOut]


def _query(item: CheckIn, tenant: str) -> CheckQuery:
    return CheckQuery(
        principal=item.principal,
        action=item.action,
        resource=item.resource,
        tenant=tenant,
        scopes=tuple(item.scopes) if item.scopes is not None else None,
        client_ip=item.context.clientIp,
        mfa=item.context.mfa,
        auth_method=item.context.authMethod,
    )


def _out(result: CheckResult) -> CheckOut:
    decision = result.decision
    return CheckOut(
        effect=decision.effect.value,
        allowed=decision.allowed,
        principal=result.subject.principal.name,
        action=result.query.action,
        resource=result.query.resource,
        permission=result.permission,
        reasons=list(decision.reasons),
        checks=[
            StageOut(stage=c.stage, passed=c.passed, reasons=list(c.reasons))
            for c in decision.checks
        ],
    )


@router.post("/check", response_model=CheckOut | BatchOut)
async def check(
    body: CheckBody,
    request: Request,
    caller: Caller = Depends(require("authz", "check")),
    services: Services = Depends(services_dep),
) -> CheckOut | BatchOut:
    items = body.requests if isinstance(body, BatchIn) else [body]
    queries = [_query(item, caller.identity.tenant) for item in items]
    results = await run_in_threadpool(services.authz.checks.check_many, queries)
    sink: AuditSink = request.app.state.audit
    actor = actor_of(caller, request)
    for result in results:
        now = services.clock.now()
        await sink.record(check_event(result, actor=actor, now=now, request_id=actor["requestId"]))
    outs = [_out(r) for r in results]
    return BatchOut(results=outs) if isinstance(body, BatchIn) else outs[0]
