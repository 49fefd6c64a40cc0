"""Input validation of request bodies: size (while streaming), content type, JSON, sanitising.

Header checks (`BodyPolicy.check_headers`) run before authentication and cost nothing: a
declared ``Content-Length`` over ``maxSize`` is 413, and a body without a content type or
with one outside ``allowedContentTypes`` is 415, before the upstream is called. JSON bodies
are read whole (at most ``maxJsonSize``, 400 beyond it, as too deep is) because depth and
sanitising need the whole document; they are checked before the upstream is called. Any
other body streams uninspected (``allowedContentTypes`` is how to refuse such types), and the
size limit is enforced on the bytes as they arrive. nh3 (the Ammonia sanitiser) cleans HTML
in JSON strings. Every body has ``gateway.timeouts.requestBody`` to arrive (`body_deadline`),
and the bodies of bastion's own endpoints have fixed caps (`bastion.gateway.own_apps`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nh3

from bastion.core.bodies import (
    BodyRuleError,
    is_json,
    media_allowed,
    media_type,
    parse_json,
    rewrite_strings,
)
from bastion.errors import (
    InvalidBodyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    UpstreamError,
)
from bastion.gateway.headers import Headers
from bastion.gateway.problems import RequestTimeoutError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

UNTYPED_BODY = (
    "a request with a body must say its Content-Type: bastion checks JSON bodies before the "
    "upstream sees them, and cannot tell whether an untyped body is JSON"
)


@dataclass(frozen=True, slots=True)
class BodyPolicy:
    enabled: bool = True
    max_size: int = 10 * 1000 * 1000
    allowed_types: tuple[str, ...] = ()
    max_json_depth: int = 32
    max_json_size: int = 1000 * 1000
    strip_html: bool = False
    strip_scripts: bool = False

    def check_headers(self, headers: Headers) -> None:
        """413 / 415 from the request headers alone. A body without a content type is 415:
        bastion checks and sanitises JSON bodies only, and many frameworks read an untyped
        body as JSON, so one could carry JSON past every check."""
        if not self.enabled or not has_body(headers):
            return
        length = declared_length(headers)
        if length is not None and length > self.max_size:
            raise PayloadTooLargeError(f"body of {length} bytes exceeds maxSize")
        media = media_type(header(headers, b"content-type"))
        if media is None:
            raise UnsupportedMediaTypeError(UNTYPED_BODY)
        if self.allowed_types and not media_allowed(media, self.allowed_types):
            raise UnsupportedMediaTypeError("content type is not allowed")

    def sanitise(self, text: str) -> str:
        if "<" not in text:
            return text
        if self.strip_html:
            return nh3.clean(text, tags=set())
        return nh3.clean(text)

    @property
    def sanitising(self) -> bool:
        return self.enabled and (self.strip_html or self.strip_scripts)


@dataclass(slots=True)
class RequestBody:
    """What goes upstream: ``data`` (read and checked) or ``stream`` (checked as it flows)."""

    data: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    replaced_length: bool = False
    failure: list[BaseException] = field(default_factory=list)


async def read_body(policy: BodyPolicy, headers: Headers, receive: Receive) -> RequestBody:
    """The body, checked as far as it can be before the upstream is called."""
    if not has_body(headers):
        return RequestBody()
    if not policy.enabled:
        return RequestBody(stream=_stream(receive, None, []))
    if not is_json(media_type(header(headers, b"content-type"))):
        failure: list[BaseException] = []
        return RequestBody(stream=_stream(receive, policy.max_size, failure), failure=failure)
    limit = min(policy.max_size, policy.max_json_size)
    try:
        data = b"".join([chunk async for chunk in _stream(receive, limit, [])])
    except PayloadTooLargeError:
        if policy.max_json_size >= policy.max_size:
            raise
        # Within maxSize but over maxJsonSize: a JSON rule, like depth (400, not 413).
        raise InvalidBodyError("json_too_large", "JSON body exceeds maxJsonSize") from None
    try:
        document = parse_json(data, max_depth=policy.max_json_depth)
    except BodyRuleError as exc:
        raise InvalidBodyError(exc.code, str(exc)) from None
    if policy.sanitising:
        cleaned, changed = rewrite_strings(document, policy.sanitise)
        if changed:
            return RequestBody(data=json.dumps(cleaned).encode(), replaced_length=True)
    return RequestBody(data=data, replaced_length=True)


async def _stream(
    receive: Receive, limit: int | None, failure: list[BaseException]
) -> AsyncIterator[bytes]:
    seen = 0
    while True:
        try:
            message = await receive()
        except RequestTimeoutError as exc:
            failure.append(exc)
            raise
        if message["type"] == "http.disconnect":
            raise UpstreamError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            seen += len(chunk)
            if limit is not None and seen > limit:
                error = PayloadTooLargeError("body exceeds the size limit")
                failure.append(error)
                raise error
            yield chunk
        if not message.get("more_body", False):
            return


def body_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the body exceeds {limit:,} bytes")


def body_deadline(receive: Receive, seconds: float) -> Receive:
    """``receive`` with ``seconds`` for the whole request body, counted from its first read:
    `RequestTimeoutError` (408) once they are up, so a client trickling a body cannot hold a
    request open. Once the body is complete, later reads (an application waiting for the
    client to go) pass through untimed."""
    deadline: float | None = None
    complete = False

    async def timed_receive() -> MutableMapping[str, Any]:
        nonlocal deadline, complete
        if complete:
            return await receive()
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeoutError(
                f"the request body did not arrive within {seconds:g}s"
            ) from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed_receive


def capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises `PayloadTooLargeError` as soon as the body's bytes pass
    ``limit``, before the chunk that passes it reaches the application."""
    seen = 0

    async def capped_receive() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise body_too_large(limit)
        return message

    return capped_receive


def header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def declared_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    value = header(headers, b"content-length")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def has_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and value.strip() not in (b"0", b""):
            return True
    return False
