"""``/v1/policies``: the Cedar policy set in force, its schema, validation and reload.

Policies are deployment-wide (``security.policies``), so only principals of the operators'
tenant (``security.defaultTenant``) may use these endpoints, with ``policies:*`` permissions.
The schema and validation work before any policy file is configured (they are how the first
policy gets written); a reload then is a 409 that says so.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import cedarpy
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.errors import AuthorizationError, ConflictError, PolicyError
from bastion.gateway.api.deps import in_platform_tenant, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.services.access import Caller
from bastion.services.authz_config import generated_schema
from bastion.services.policies import PolicyEngine
from bastion.wiring import Services

router = APIRouter(prefix="/v1/policies", tags=["authorization"])


class PolicyOut(BaseModel):
    name: str
    effect: str
    file: str


class PolicySetOut(BaseModel):
    enabled: bool
    files: list[str]
    loadedAt: datetime | None
    digest: str | None
    policies: list[PolicyOut]
    lastError: str | None = Field(description="Why the last reload was rejected, if it was")


class ValidateIn(Body):
    text: str = Field(min_length=1, max_length=1_000_000)


class ValidateOut(BaseModel):
    valid: bool
    errors: list[str]


def _operator(caller: Caller, services: Services) -> None:
    if not in_platform_tenant(caller, services):
        raise AuthorizationError(("policies belong to the operators' tenant",))


def _engine(services: Services) -> PolicyEngine:
    if services.authz.policies is None:
        raise ConflictError(
            "no policy files are configured (security.policies.files), so there is nothing"
            " to reload"
        )
    return services.authz.policies


def _schema(services: Services) -> str:
    """The schema policies are validated against: the engine's, else the one it would use
    (``security.policies.schema``, or the schema bastion generates)."""
    if services.authz.policies is not None:
        return services.authz.policies.schema
    configured = services.config.security.policies.schema_file
    if configured is None:
        return json.dumps(generated_schema(services.config))
    try:
        return Path(configured).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{configured}: cannot read ({exc.strerror})") from None


def _out(services: Services) -> PolicySetOut:
    engine = services.authz.policies
    if engine is None or engine.state is None:
        return PolicySetOut(
            enabled=False, files=[], loadedAt=None, digest=None, policies=[], lastError=None
        )
    state = engine.state
    return PolicySetOut(
        enabled=True,
        files=[str(f) for f in engine.files],
        loadedAt=state.loaded_at,
        digest=state.digest,
        policies=[
            PolicyOut(name=p.name, effect=p.effect, file=p.file) for p in state.names.values()
        ],
        lastError=engine.last_error,
    )


@router.get("", response_model=PolicySetOut)
def get_policies(
    caller: Caller = Depends(require("policies", "read")),
    services: Services = Depends(services_dep),
) -> PolicySetOut:
    _operator(caller, services)
    return _out(services)


_SCHEMA_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The Cedar schema: JSON, or Cedar schema syntax as text/plain when"
        " security.policies.schema is written in it",
        "content": {"application/json": {}, "text/plain": {}},
    }
}


@router.get("/schema", response_class=JSONResponse, responses=_SCHEMA_FORMATS)
def get_schema(
    caller: Caller = Depends(require("policies", "read")),
    services: Services = Depends(services_dep),
) -> Response:
    _operator(caller, services)
    text = _schema(services)
    try:
        return JSONResponse(json.loads(text))
    except ValueError:
        return PlainTextResponse(text)


@router.post("/validate", response_model=ValidateOut)
def validate(
    body: ValidateIn,
    caller: Caller = Depends(require("policies", "read")),
    services: Services = Depends(services_dep),
) -> ValidateOut:
    _operator(caller, services)
    try:
        result = cedarpy.validate_policies(body.text, _schema(services))
    except ValueError as exc:
        return ValidateOut(valid=False, errors=[str(exc)])
    return ValidateOut(valid=result.validation_passed, errors=[str(e) for e in result.errors])


@router.post("/reload", response_model=PolicySetOut)
async def reload(
    caller: Caller = Depends(require("policies", "reload")),
    services: Services = Depends(services_dep),
) -> PolicySetOut:
    _operator(caller, services)
    engine = _engine(services)
    await run_in_threadpool(engine.reload, trigger="api")
    return _out(services)
