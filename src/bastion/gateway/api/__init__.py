"""Bastion's admin REST API (FastAPI), mounted by the edge at ``<gateway.prefix>/api``.

How to add endpoints:

1. Write a module in this package with ``router = APIRouter(prefix="/v1/<things>", tags=[...])``
   and register it in `bastion.gateway.api.app.ROUTERS`.
2. Protect every endpoint with the same engine as the proxy::

       @router.get("", response_model=list[ThingOut])
       def list_things(caller: Caller = Depends(require("things", "read")),
                       services: Services = Depends(services_dep)) -> list[ThingOut]:
           ...

   `require(resource, action)` authenticates the request (API key or any other credential
   verifier), checks RBAC ∩ scopes for ``resource:action`` and audits a deny; it returns the
   `Caller` (identity, grants, scopes). Scope every read and write to
   ``caller.identity.principal.tenant_id`` — the caller's tenant.
3. Raise `bastion.errors` exceptions; `bastion.gateway.problems` maps them to problem+json.
   Pass `actor_of(caller, request)` as the audit actor to services that record changes.

OpenAPI is served at ``<prefix>/api/openapi.json``.
"""
