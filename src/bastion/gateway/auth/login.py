"""``POST <prefix>/login`` (password → tokens) and ``POST <prefix>/logout``.

Every failed login gets the same status, headers and body (`LOGIN_FAILED`), whether the user
is unknown, the password wrong or the account locked; the audit log records which.
"""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import Response

from bastion.core.names import canonical_name
from bastion.errors import (
    AuthenticationError,
    BastionError,
    LoginBusyError,
    PasswordChangeRequiredError,
    RequestRejectedError,
)
from bastion.gateway.auth.common import client_ip, json_body, login_failed, token_response
from bastion.gateway.problem_handlers import problem_response, request_id_of
from bastion.services.login import LoginRequest
from bastion.wiring import Services


def _problem(request: Request, error: BastionError, detail: str | None = None) -> Response:
    headers = {"retry-after": "1"} if isinstance(error, LoginBusyError) else None
    return problem_response(request, error, detail=detail, headers=headers)


def _string(body: dict[str, object], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise RequestRejectedError(f"{name} must be a non-empty string")
    return value


async def login_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    identity = services.identity
    try:
        body = await json_body(request)
        login = LoginRequest(
            tenant=_string(body, "tenant", required=False)
            or services.config.security.default_tenant,
            username=_string(body, "username") or "",
            password=_string(body, "password") or "",
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            new_password=_string(body, "newPassword", required=False),
            request_id=request_id_of(request),
        )
    except RequestRejectedError as exc:
        return _problem(request, exc, str(exc))

    pool = identity.hashing
    try:
        with pool.admission():
            await pool.step(identity.tokens.warm)  # keys loaded before the login's transaction
            done = await identity.logins.login_in(login, pool, start=identity.tokens.start_session)
        assert done.tokens is not None
        tokens = done.tokens.response()
    except AuthenticationError:
        return login_failed(request)
    except PasswordChangeRequiredError as exc:
        detail = "the password has expired: send newPassword to set a new one"
        return _problem(request, exc, detail)
    except RequestRejectedError as exc:
        return _problem(request, exc, str(exc))
    except BastionError as exc:
        return _problem(request, exc)
    tokens["tenant"] = canonical_name(login.tenant)
    return token_response(tokens)


async def logout_endpoint(request: Request) -> Response:
    """Revoke the refresh token (and its family) named in ``{"refreshToken": …}``."""
    services: Services = request.app.state.services
    try:
        body = await json_body(request)
        token = _string(body, "refreshToken") or ""
    except RequestRejectedError as exc:
        return _problem(request, exc, str(exc))
    from starlette.concurrency import run_in_threadpool

    with contextlib.suppress(BastionError):
        await run_in_threadpool(services.identity.tokens.revoke_refresh, token, owner=None)
    return Response(b"", 204, headers={"cache-control": "no-store"})
