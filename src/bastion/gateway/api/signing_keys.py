"""``/v1/signingkeys``: the keys bastion signs tokens with (public parts), and rotation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bastion.core.credentials import SigningKey
from bastion.errors import AuthorizationError
from bastion.gateway.api.deps import actor_of, in_platform_tenant, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.services.access import Caller
from bastion.wiring import Services

router = APIRouter(prefix="/v1/signingkeys", tags=["signing keys"])


class SigningKeyOut(BaseModel):
    kid: str
    algorithm: str
    created: datetime
    retired: datetime | None
    publishedUntil: datetime | None
    publicJwk: dict[str, Any]


class Rotation(Body):
    algorithm: Literal["RS256", "ES256", "EdDSA"] | None = None


def _out(key: SigningKey) -> SigningKeyOut:
    return SigningKeyOut(
        kid=key.kid,
        algorithm=key.algorithm,
        created=key.created_at,
        retired=key.retired_at,
        publishedUntil=key.publish_until,
        publicJwk=json.loads(key.public_jwk),
    )


@router.get("", response_model=list[SigningKeyOut])
def list_keys(
    caller: Caller = Depends(require("signingkeys", "read")),
    services: Services = Depends(services_dep),
) -> list[SigningKeyOut]:
    return [_out(k) for k in services.identity.signing_keys.list()]


@router.post("/rotate", response_model=SigningKeyOut, status_code=201)
async def rotate(
    request: Request,
    body: Rotation | None = None,
    caller: Caller = Depends(require("signingkeys", "update")),
    services: Services = Depends(services_dep),
) -> SigningKeyOut:
    if not in_platform_tenant(caller, services):
        raise AuthorizationError(("only the platform tenant's principals rotate signing keys",))
    key = await run_in_threadpool(
        services.identity.signing_keys.rotate,
        algorithm=body.algorithm if body else None,
        actor=actor_of(caller, request),
    )
    return _out(key)
