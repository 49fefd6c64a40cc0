"""What the authentication endpoints share: form parsing, fixed error bodies, the audit hook."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response

from bastion.core.bodies import (
    DuplicateKeyError,
    is_json,
    json_depth_exceeds,
    media_type,
    no_duplicate_keys,
)
from bastion.core.names import storable
from bastion.errors import InvalidBodyError, RequestRejectedError, UnsupportedMediaTypeError
from bastion.gateway.invalid_input import not_json
from bastion.gateway.network import client_ip_of
from bastion.gateway.own_apps import AUTH_MAX_BODY
from bastion.gateway.problem_handlers import request_id_of
from bastion.gateway.validation import body_too_large
from bastion.services.audit import AuditSink, build_event
from bastion.services.request_events import client_text
from bastion.wiring import Services

MAX_JSON_DEPTH = 8  # a login or logout body is one flat object
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def client_ip(request: Request) -> str | None:
    """The client address the edge resolved (trusted proxies only), else the peer."""
    return client_ip_of(request.scope)


async def form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; RFC 6749 section 3.2: "Request and
    response parameters MUST NOT be included more than once" — a repeated one is refused."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise RequestRejectedError("the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > AUTH_MAX_BODY:  # the edge caps it as it is read; mounted elsewhere, too
        raise body_too_large(AUTH_MAX_BODY)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise RequestRejectedError("the body is not a valid form") from None
    parsed: dict[str, str] = {}
    for name, value in pairs:
        if name in parsed:
            raise RequestRejectedError(f"parameter {name} is repeated")
        parsed[name] = storable(value)  # %00 matches nothing, as in a JSON body
    return parsed


async def json_body(request: Request) -> dict[str, Any]:
    """A small JSON object, declared ``application/json``, UTF-8, nested at most
    `MAX_JSON_DEPTH` deep, its strings storable (`_storable`). Another declared
    type is 415, as at the admin API: a browser sends ``text/plain`` across sites without
    asking first, and a login is never such a request."""
    if not is_json(media_type(request.headers.get("content-type"))):
        raise UnsupportedMediaTypeError("the body must be application/json")
    body = await request.body()
    if len(body) > AUTH_MAX_BODY:  # the edge caps it as it is read; mounted elsewhere, too
        raise body_too_large(AUTH_MAX_BODY)
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise InvalidBodyError(
            "json_too_deep", f"the body nests deeper than {MAX_JSON_DEPTH} levels"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBodyError("invalid_json", "the body is not UTF-8 text") from None
    try:
        parsed = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except DuplicateKeyError as exc:  # which username was meant, the first or the last?
        raise InvalidBodyError("invalid_json", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise not_json(exc.msg, text, exc.pos) from None
    except ValueError:  # a number too long to convert, for one
        raise InvalidBodyError("invalid_json", "the body could not be read as JSON") from None
    if not isinstance(parsed, dict):
        raise RequestRejectedError("the body must be a JSON object")
    cleaned: dict[str, Any] = _storable(parsed)
    return cleaned


def _storable(value: Any) -> Any:
    """``value`` with every lone surrogate and NUL in its strings (keys too) replaced by U+FFFD
    (`bastion.core.names.storable`): such a password is then an ordinary wrong one (counted,
    hashed alike, audited), such a name or token one that matches nothing, on PostgreSQL as
    on SQLite. The depth is bounded by `MAX_JSON_DEPTH`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 section 2.3.1 client authentication with HTTP Basic (form-encoded parts)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and a non-ASCII str (Latin-1 header)
        return ("", "")
    client, sep, secret = decoded.partition(":")
    if not sep:
        return ("", "")
    return storable(unquote(client)), storable(unquote(secret))


def oauth_error(error: str, status: int = 400, description: str | None = None) -> Response:
    """RFC 6749 section 5.2 error response."""
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    headers = dict(NO_STORE)
    if status == 401:
        headers["www-authenticate"] = 'Basic realm="bastion"'
    return Response(json.dumps(body), status, headers=headers, media_type="application/json")


def token_response(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), 200, headers=NO_STORE, media_type="application/json")


# One body for every failed login, whatever the reason: unknown user, wrong password, locked.
# Only the request's own id differs from one failure to the next.
LOGIN_FAILED = {
    "type": "https://bastion.dev/problems/invalid_credentials",
    "title": "Authentication failed",
    "status": 401,
    "code": "invalid_credentials",
}


def login_failed(request: Request) -> Response:
    request_id = request_id_of(request)
    body = json.dumps({**LOGIN_FAILED, "requestId": request_id}).encode()
    headers = {
        **NO_STORE,
        "www-authenticate": 'Bearer realm="bastion"',
        "x-bastion-request-id": request_id,
    }
    return Response(body, 401, headers=headers, media_type="application/problem+json")


async def audit_failure(
    request: Request,
    services: Services,
    sink: AuditSink,
    *,
    action: str,
    reason: str,
    actor_id: str | None = None,
) -> None:
    """Audit a refusal the services did not record themselves (for example a bad client)."""
    event = build_event(
        action=action,
        outcome="failure",
        tenant=services.config.security.default_tenant,
        now=services.clock.now(),
        actor={
            "type": "client",
            "id": actor_id,
            "ip": client_ip(request),
            "userAgent": client_text(request.headers.get("user-agent")),
        },
        details={"reason": reason},
        request={
            "method": request.method,
            "path": request.url.path,
            "requestId": request_id_of(request),
        },
    )
    await sink.record(event)
