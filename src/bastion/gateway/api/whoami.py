"""``GET /v1/whoami``: who the presented credential is, and what it may do."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from bastion.gateway.api.deps import require
from bastion.services.access import Caller

router = APIRouter(prefix="/v1", tags=["identity"])


class WhoAmI(BaseModel):
    principal: str
    kind: str
    tenant: str
    roles: list[str]
    credential: str
    scopes: list[str] | None


@router.get("/whoami", response_model=WhoAmI)
def whoami(caller: Caller = Depends(require("identity", "read"))) -> WhoAmI:
    identity = caller.identity
    return WhoAmI(
        principal=identity.principal.name,
        kind=identity.principal.kind.value,
        tenant=identity.tenant,
        roles=list(identity.roles),
        credential=identity.credential_id,
        scopes=list(caller.scopes) if caller.scopes is not None else None,
    )
