"""``POST <prefix>/oauth/token`` (RFC 6749, RFC 8693) and ``POST <prefix>/oauth/revoke``
(RFC 7009). Errors follow RFC 6749 section 5.2; the real reason goes to the audit log.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    NotFoundError,
    PayloadTooLargeError,
    RequestRejectedError,
)
from bastion.gateway.auth.common import (
    audit_failure,
    basic_credentials,
    form,
    oauth_error,
    token_response,
)
from bastion.gateway.problems import RequestTimeoutError
from bastion.services.audit import AuditSink
from bastion.services.authn import Authenticated
from bastion.services.exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE
from bastion.wiring import Services


def _client(services: Services, client_id: str, secret: str) -> Authenticated:
    """Authenticate a client (service account or agent) by its id and one of its API keys."""
    if not client_id or not secret:
        raise AuthenticationError("missing_client_credentials")
    with services.storage.read_only() as tx:
        authenticated = services.api_keys.verify(tx, secret)
    services.api_keys.settle()  # its last-used time
    if client_id not in (authenticated.principal.id, authenticated.principal.name):
        raise AuthenticationError("secret_of_another_client")
    return authenticated


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str] | None:
    basic = basic_credentials(request)
    in_body = "client_id" in params or "client_secret" in params
    if basic is not None and in_body:
        raise RequestRejectedError("use one client authentication method")
    if basic is not None:
        return basic
    if in_body:
        return params.get("client_id", ""), params.get("client_secret", "")
    return None


async def token_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    sink: AuditSink = request.app.state.audit
    try:
        params = await form(request)
        grant = params.get("grant_type")
        credentials = _client_credentials(request, params)
    except (PayloadTooLargeError, RequestTimeoutError):
        raise  # 413 / 408 problem+json, as the edge answers a declared length over the cap
    except RequestRejectedError as exc:
        return oauth_error("invalid_request", description=str(exc))
    client: Authenticated | None = None
    if credentials is not None:
        try:
            client = await run_in_threadpool(_client, services, *credentials)
        except AuthenticationError as exc:
            await audit_failure(
                request,
                services,
                sink,
                action="oauth.client",
                reason=exc.reason,
                actor_id=credentials[0] or None,
            )
            return oauth_error("invalid_client", 401)
    try:
        if grant == "client_credentials":
            if client is None:
                return oauth_error("invalid_client", 401)
            issued = await run_in_threadpool(
                services.identity.tokens.client_credentials, client, scope=params.get("scope")
            )
            return token_response(issued.response())
        if grant == "refresh_token":
            presented = params.get("refresh_token", "")
            issued = await run_in_threadpool(
                services.identity.tokens.refresh, presented, scope=params.get("scope")
            )
            return token_response(issued.response())
        if grant == GRANT_TYPE:
            issued = await run_in_threadpool(
                services.identity.exchange.exchange,
                subject_token=params.get("subject_token", ""),
                subject_token_type=params.get("subject_token_type", ""),
                client=client,
                actor_token=params.get("actor_token"),
                actor_token_type=params.get("actor_token_type"),
                scope=params.get("scope"),
            )
            return token_response(issued.response(issued_token_type=ACCESS_TOKEN_TYPE))
    except AuthenticationError as exc:
        if exc.reason in ("unknown_refresh_token",) or grant == GRANT_TYPE:
            await audit_failure(request, services, sink, action="token.issue", reason=exc.reason)
        return oauth_error("invalid_grant")
    except AuthorizationError:
        return oauth_error("invalid_scope" if grant != GRANT_TYPE else "invalid_target")
    except RequestRejectedError as exc:
        return oauth_error("invalid_request", description=str(exc))
    except NotFoundError:
        return oauth_error("invalid_grant")
    except BastionError:
        return oauth_error("temporarily_unavailable", 503)
    return oauth_error("unsupported_grant_type")


async def revoke_endpoint(request: Request) -> Response:
    """RFC 7009: revoke a refresh token (its family) or one of bastion's access tokens.

    The authorization server responds with HTTP 200 whether or not the token was valid.
    """
    services: Services = request.app.state.services
    try:
        params = await form(request)
    except (PayloadTooLargeError, RequestTimeoutError):
        raise
    except RequestRejectedError as exc:
        return oauth_error("invalid_request", description=str(exc))
    token = params.get("token", "")
    identity = services.identity
    try:
        if token.startswith("brt_"):
            await run_in_threadpool(identity.tokens.revoke_refresh, token, owner=None)
        elif token.startswith("eyJ"):
            await run_in_threadpool(_revoke_access, services, token)
    except BastionError:
        pass
    return Response(b"", 200, headers={"cache-control": "no-store"})


def _revoke_access(services: Services, token: str) -> None:
    with services.storage.transaction() as tx:
        authenticated, claims = services.identity.issued_tokens.verify_claims(tx, token)
    actor = {
        "type": authenticated.principal.kind.value,
        "id": authenticated.principal.name,
        "via": "oauth",
    }
    services.identity.tokens.revoke_access(claims, actor=actor)
