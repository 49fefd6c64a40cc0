"""`StrictInput`: the admin API refuses input that two readers could read two ways.

A query parameter given twice (``?actor=alice&actor=bob``) or a JSON object key given twice
(``{"scopes": ["admin"], "scopes": ["patterns:read"]}``) is read as its last value by the
framework, and as its first by many proxies, firewalls and log pipelines: what was checked or
recorded in front of bastion would not be what bastion did. Both are refused with a ``400``
naming the parameter or key, as the gateway refuses them in proxied JSON bodies
(`bastion.core.bodies`) and the OAuth endpoints refuse a repeated form parameter.

So is a query parameter holding a NUL character (``%00``), which a reader in C takes for
the end of the text. Only those ambiguities are judged here. A body that is not JSON at all
(or nests too deep to read) goes on to the framework, which says precisely what is wrong with
it.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.bodies import DuplicateKeyError, is_json, media_type, no_duplicate_keys
from bastion.errors import RequestRejectedError
from bastion.gateway.problem_handlers import problem_response
from bastion.gateway.validation import has_body, header


class StrictInput:
    """ASGI middleware for the admin API (its bodies are capped at the edge, so reading one
    whole here holds no more than the framework would)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error: RequestRejectedError | None = None
        problem = query_problem(scope.get("query_string", b""))
        headers = scope.get("headers", [])
        if (
            problem is None
            and has_body(headers)
            and is_json(media_type(header(headers, b"content-type")))
        ):
            try:
                messages, body = await _read(receive)
            except RequestRejectedError as exc:  # over the edge's cap, or too slow to arrive
                error = exc
            else:
                problem = duplicate_key(body)
                receive = _replay(messages, receive)
        if problem is not None:
            error = RequestRejectedError(problem)
        if error is not None:
            response = problem_response(Request(scope, receive), error, detail=str(error))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def query_problem(query_string: bytes) -> str | None:
    """What is wrong with the query, for the first parameter given more than once or holding
    a NUL character (``%00``: a reader in C ends the text there, and PostgreSQL can neither
    store nor compare it), else None."""
    seen: set[str] = set()
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        shown = name[:80].replace("\x00", "\ufffd")
        if "\x00" in name or "\x00" in value:
            return f"query parameter {shown} must not hold a NUL character"
        if name in seen:
            return f"query parameter {shown} is given more than once"
        seen.add(name)
    return None


def duplicate_key(body: bytes) -> str | None:
    """``the body has the key X more than once in one object`` for the first such key, else
    None (also for a body that is not JSON: the framework reports that)."""
    try:
        json.loads(body, object_pairs_hook=no_duplicate_keys)
    except DuplicateKeyError as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None
    return None


async def _read(receive: Receive) -> tuple[list[Message], bytes]:
    """Every message of the request body, and the body."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    return messages, body


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` again first, then reads on."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
