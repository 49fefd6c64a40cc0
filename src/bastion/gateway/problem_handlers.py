"""Problem+json from bastion's Starlette apps (the admin API, the authentication endpoints).

`install_problem_handlers` gives an app one set of exception handlers, so that whatever fails
answers through the status table in `bastion.gateway.problems`: a path with no endpoint (404),
a method the endpoint does not answer (405 with ``Allow``), a body that is not JSON or does
not validate (400, 415), a bastion error, and anything unexpected (500, the exception only in
the server's log). The framework's own ``{"detail": …}`` and plain-text answers never leave.

The edge names each request before it dispatches (``bastion.request_id`` in the scope's
state); `request_id_of` reads that name, so the body, the ``X-Bastion-Request-Id`` header and
the audit event of one request agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.ids import new_id
from bastion.errors import (
    BastionError,
    NotFoundError,
    PayloadTooLargeError,
    RequestRejectedError,
    UnsupportedMediaTypeError,
)
from bastion.gateway import problems
from bastion.gateway.invalid_input import invalid_input, unparsable_body

log = logging.getLogger("bastion.gateway")


def request_id_of(request: Request) -> str:
    """The id the edge gave this request (one is made and kept when there was no edge)."""
    state = request.scope.setdefault("state", {})
    found = state.get(problems.REQUEST_ID_STATE)
    if isinstance(found, str):
        return found
    made = new_id("req")
    state[problems.REQUEST_ID_STATE] = made
    return made


def problem_response(
    request: Request,
    error: BastionError,
    *,
    detail: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``error`` as problem+json, with the request's id in the body and a header."""
    status = status or problems.status_for(error)[0]
    request_id = request_id_of(request)
    body = problems.problem_body(error, request_id=request_id, detail=detail, status=status)
    own = problems.response_headers(status, request_id=request_id, error=error)
    merged = {name.decode(): value.decode() for name, value in own}
    return Response(body, status_code=status, headers={**merged, **(headers or {})})


def install_problem_handlers(
    app: Starlette,
    *,
    detailed: tuple[type[BastionError], ...] = (RequestRejectedError,),
    not_found: str = "nothing is served at this path",
    routes: Sequence[BaseRoute] = (),
) -> None:
    """Answer every failure in ``app`` with problem+json. Bastion errors of the ``detailed``
    classes show their message as the detail; others show none (a deny never says why).
    ``routes`` (default: the app's own) are what a 405's ``Allow`` is read from."""

    async def bastion_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BastionError)
        detail = str(exc) if isinstance(exc, detailed) else None
        return problem_response(request, exc, detail=detail)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        content_type = request.headers.get("content-type")
        error = invalid_input(exc.errors(), exc.body, content_type=content_type)
        return problem_response(request, error, detail=str(error))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error, status = _from_http(request, exc, not_found=not_found, routes=routes or app.routes)
        return problem_response(request, error, detail=str(error) or None, status=status)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer, so the server logs the traceback too.
        log.error(
            "unexpected %s answering %s %s", type(exc).__name__, request.method, request.url.path
        )
        return problem_response(request, problems.InternalError(""))

    app.add_exception_handler(BastionError, bastion_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _allowed(request: Request, named: list[str], routes: Sequence[BaseRoute]) -> list[str]:
    """Every method the path answers. The framework's ``Allow`` names only the first route
    that matched the path (``GET /v1/users`` hides ``POST /v1/users``); RFC 9110 section
    15.5.6 wants "a list of the target resource's currently supported methods"."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    methods = set(named)
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def _from_http(
    request: Request, exc: HTTPException, *, not_found: str, routes: Sequence[BaseRoute]
) -> tuple[BastionError, int | None]:
    """The bastion error for an answer the framework chose (routing, body reading)."""
    status = exc.status_code
    if status == 404:
        return NotFoundError(not_found), None
    if status == 405:
        allow = (exc.headers or {}).get("Allow", "")
        named = [m.strip() for m in allow.split(",") if m.strip()]
        allowed = _allowed(request, named, routes)
        return problems.MethodNotAllowedError(request.method, allowed), None
    if status == 400:
        return unparsable_body(exc.__cause__), None
    if status == 413:
        return PayloadTooLargeError("the body is too large"), None
    if status == 415:
        return UnsupportedMediaTypeError("the body must be application/json"), None
    if status >= 500:
        return problems.InternalError(""), status
    return RequestRejectedError(""), status
