"""`build_auth_app`: the authentication endpoints and the ``/.well-known`` documents.

The edge sends ``<prefix>/oauth/…``, ``<prefix>/login``, ``<prefix>/logout`` and
``/.well-known/…`` here, with the resolved client address and the request's id in the scope's
state. A wrong method is a 405 problem with ``Allow``; the OAuth endpoints' own errors follow
RFC 6749 section 5.2, every other failure is problem+json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.gateway.auth.login import login_endpoint, logout_endpoint
from bastion.gateway.auth.oauth import revoke_endpoint, token_endpoint
from bastion.gateway.problem_handlers import install_problem_handlers
from bastion.services.audit import AuditSink
from bastion.services.exchange import GRANT_TYPE
from bastion.wiring import Services

CACHE_PUBLIC = {"cache-control": "public, max-age=300"}


def auth_paths(prefix: str) -> tuple[str, ...]:
    """The exact paths `build_auth_app` serves (the edge routes these here)."""
    return (
        f"{prefix}/oauth/token",
        f"{prefix}/oauth/revoke",
        f"{prefix}/login",
        f"{prefix}/logout",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    )


def build_auth_app(
    services: Services, *, audit: AuditSink, extra_jwks: Callable[[], dict[str, Any]]
) -> Starlette:
    prefix = services.config.gateway.prefix
    identity = services.identity

    async def jwks(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        own = await run_in_threadpool(identity.signing_keys.jwks)
        keys = [*own["keys"], *extra_jwks()["keys"]]
        return JSONResponse({"keys": keys}, headers=CACHE_PUBLIC)

    async def discovery(request: Request) -> Response:
        issuer = identity.issuer
        document = {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}{prefix}/oauth/token",
            "revocation_endpoint": f"{issuer}{prefix}/oauth/revoke",
            "grant_types_supported": ["client_credentials", "refresh_token", GRANT_TYPE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": [identity.signing_keys.algorithm],
            "token_endpoint_auth_signing_alg_values_supported": [identity.signing_keys.algorithm],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["admin"],
            "claims_supported": ["sub", "name", "kind", "tid", "scope", "act", "cid"],
        }
        return JSONResponse(document, headers=CACHE_PUBLIC)

    app = Starlette(
        routes=[
            Route(f"{prefix}/oauth/token", token_endpoint, methods=["POST"]),
            Route(f"{prefix}/oauth/revoke", revoke_endpoint, methods=["POST"]),
            Route(f"{prefix}/login", login_endpoint, methods=["POST"]),
            Route(f"{prefix}/logout", logout_endpoint, methods=["POST"]),
            Route("/.well-known/jwks.json", jwks, methods=["GET"]),
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        ]
    )
    app.state.services = services
    app.state.audit = audit
    install_problem_handlers(app)
    return app
