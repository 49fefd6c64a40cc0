"""WebSocket pass-through: the handshake is decided like any GET, then frames flow both ways.

The upgrade request goes through the same pipeline (allowlist, global limit, Host and path in
the edge; then credential, route, authorization, limits). A deny is answered as a plain HTTP
response to the handshake (ASGI ``websocket.http.response``), audited once. An allowed handshake
is audited with status 101 before the client's connection is accepted; the upstream sees the
identity headers, and none of the client's reserved headers (`headers.strip_for_upstream`). A
client message longer than ``inputValidation.maxSize`` closes both sides with 1009 (message too
big) and is not forwarded; ``bastion serve`` also gives uvicorn that limit, so such a frame is
never buffered whole.

An open connection is decided again every ``gateway.websocket.recheck`` (uncached, with the
handshake's credential): once its key is revoked, its token expired or its binding removed, it
is audited as a deny and closed with 1008 (policy violation) on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.errors import (
    AuditUnavailableError,
    BastionError,
    NotFoundError,
    UpstreamError,
)
from bastion.gateway.forward import Forwarder
from bastion.gateway.headers import Headers, strip_for_upstream
from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.pipeline import Admission, Gate
from bastion.gateway.problems import status_for
from bastion.gateway.proxy import UpstreamProxy, UpstreamSocket
from bastion.gateway.responses import Send
from bastion.services.access import Verdict

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_HANDSHAKE = (b"sec-websocket-", b"authorization", b"x-api-key")
MESSAGE_TOO_BIG = 1009
POLICY_VIOLATION = 1008


def handshake_send(scope: MutableMapping[str, Any], send: Send) -> Send:
    """``send`` for answering a refused handshake with an HTTP response (or a 1008 close)."""
    can_respond = "websocket.http.response" in (scope.get("extensions") or {})

    async def translate(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if can_respond:
                await send({**message, "type": "websocket.http.response.start"})
            else:
                await send({"type": "websocket.close", "code": 1008})
        elif message["type"] == "http.response.body" and can_respond:
            await send({**message, "type": "websocket.http.response.body"})

    return translate


class WebSocketRelay:
    def __init__(
        self,
        *,
        proxy: UpstreamProxy | None,
        outcomes: Outcomes,
        forwarder: Forwarder,
        gate: Gate,
        prefix: str,
        max_message: int | None,
        recheck: float,
    ) -> None:
        self._proxy = proxy
        self._max_message = max_message
        self._recheck = recheck
        self._outcomes = outcomes
        self._forwarder = forwarder
        self._gate = gate
        self._prefix = prefix

    async def handle(self, inbound: Inbound, path: str, receive: Receive, send: Send) -> None:
        """Decide the handshake (after ``websocket.connect``, and after the edge's first
        stages let its canonical ``path`` through), then relay or refuse it."""
        refuse = handshake_send(inbound.scope, send)
        facts = inbound.facts(path, method="GET")
        if path.startswith(self._prefix + "/"):
            error = NotFoundError("bastion's own endpoints do not speak WebSocket")
            await self._outcomes.deny(inbound, await self._gate.refuse(facts, error), refuse)
            return
        admission = await self._gate.admit(facts, headers=inbound.headers, scope=inbound.scope)
        if not admission.allowed:
            await self._outcomes.deny(inbound, admission, refuse)
            return
        await self.relay(inbound, admission, receive, send)

    async def relay(
        self, inbound: Inbound, admission: Admission, receive: Receive, send: Send
    ) -> None:
        refuse = handshake_send(inbound.scope, send)
        if self._proxy is None:
            error = UpstreamError("no upstream is configured (gateway.upstream)")
            await self._outcomes.deny(inbound, admission.failed(error), refuse)
            return
        target = inbound.raw_path.decode("latin-1")
        if inbound.query:
            target += "?" + inbound.query.decode("latin-1")
        protocols = tuple(inbound.scope.get("subprotocols") or ())
        accepted = False
        try:
            async with self._proxy.websocket(
                target=target, headers=self._headers(inbound, admission), protocols=protocols
            ) as upstream:
                try:
                    await self._outcomes.record(admission.verdict, 101)
                except AuditUnavailableError as exc:
                    await self._outcomes.deny(inbound, admission.failed(exc), refuse)
                    return
                await send({"type": "websocket.accept", "subprotocol": upstream.protocol})
                accepted = True
                self._outcomes.metrics.observe("websocket", 101)
                await self._session(admission.verdict, receive, send, upstream)
        except BastionError as exc:
            if accepted:
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1011})
                return
            await self._outcomes.deny(inbound, admission.failed(exc), refuse)

    async def _session(
        self, verdict: Verdict, receive: Receive, send: Send, upstream: UpstreamSocket
    ) -> None:
        """Relay until either side closes, or until the connection is no longer allowed."""
        relay = asyncio.ensure_future(pump(receive, send, upstream, self._max_message))
        watch = asyncio.ensure_future(self._denied_later(verdict))
        try:
            await asyncio.wait([relay, watch], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, watch):
                task.cancel()
            for task in (watch, relay):
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # the relay's UpstreamError goes on to relay()
        if watch.done() and not watch.cancelled():
            await self._end(watch.result(), send, upstream)

    async def _denied_later(self, verdict: Verdict) -> Verdict:
        """The first later decision that no longer allows the connection."""
        while True:
            await asyncio.sleep(self._recheck)
            again = await self._gate.recheck(verdict)
            if again.error is not None:
                return again

    async def _end(self, denied: Verdict, send: Send, upstream: UpstreamSocket) -> None:
        assert denied.error is not None
        status, _ = status_for(denied.error)
        with contextlib.suppress(AuditUnavailableError):  # closing is the safe side anyway
            await self._outcomes.record(denied, status, {"mode": "websocket", "closed": 1008})
        self._outcomes.metrics.observe("websocket", status)
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        await upstream.close(POLICY_VIOLATION)

    def _headers(self, inbound: Inbound, admission: Admission) -> Headers:
        kept = [
            (n, v)
            for n, v in strip_for_upstream(inbound.headers)
            if not n.lower().startswith(_HANDSHAKE)
        ]
        return kept + self._forwarder.forwarded_headers(inbound, admission.verdict)


async def pump(
    receive: Receive, send: Send, upstream: UpstreamSocket, max_message: int | None
) -> None:
    """Relay messages both ways until either side closes; the client is sent one close."""
    client_closed = False

    async def client_to_upstream() -> None:
        nonlocal client_closed
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close()
                return
            if message["type"] == "websocket.receive":
                text = message.get("text")
                data = text if text is not None else message.get("bytes") or b""
                if max_message is not None and _size(data) > max_message:
                    client_closed = True
                    await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG})
                    await upstream.close(MESSAGE_TOO_BIG)
                    return
                await upstream.send(data)

    async def upstream_to_client() -> None:
        while True:
            data = await upstream.receive()
            if data is None:
                if client_closed:
                    return
                code = upstream.close_code or 1000
                await send({"type": "websocket.close", "code": code if code < 4999 else 1000})
                return
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})

    tasks = [
        asyncio.ensure_future(client_to_upstream()),
        asyncio.ensure_future(upstream_to_client()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, UpstreamError):
                raise error
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def _size(data: str | bytes) -> int:
    return len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
