"""Reverse-proxy mode: an admitted request goes to the upstream, both bodies streaming.

Before the upstream is called the body is checked as far as it can be (`validation.read_body`);
a streamed body that grows past ``maxSize`` on the way aborts the upstream call and answers 413.
The request's audit event is committed before the response starts. Upstream unreachable →
502, too slow → 504, both audited; a failure after the response started cuts the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.crypto.identity import IdentitySigner
from bastion.errors import AuditUnavailableError, BastionError, UpstreamError
from bastion.gateway.headers import (
    Headers,
    Network,
    identity_headers,
    is_trusted,
    strip_for_upstream,
)
from bastion.gateway.limits import rate_headers
from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.pipeline import Admission
from bastion.gateway.proxy import UpstreamProxy
from bastion.gateway.responses import Send
from bastion.gateway.validation import BodyPolicy, RequestBody, read_body
from bastion.services.access import Verdict
from bastion.services.clock import Clock

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
log = logging.getLogger("bastion.gateway")

# The credential was for bastion; the upstream gets the identity headers instead.
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
_REQUEST_ID = b"x-bastion-request-id"


class Forwarder:
    def __init__(
        self,
        *,
        proxy: UpstreamProxy | None,
        outcomes: Outcomes,
        signer: IdentitySigner,
        clock: Clock,
        trusted_proxies: tuple[Network, ...],
        body: BodyPolicy,
    ) -> None:
        self._proxy = proxy
        self._outcomes = outcomes
        self._signer = signer
        self._clock = clock
        self._trusted = trusted_proxies
        self._body = body

    async def forward(
        self, inbound: Inbound, admission: Admission, receive: Receive, send: Send
    ) -> None:
        outcomes, verdict = self._outcomes, admission.verdict
        if self._proxy is None:
            error = UpstreamError("no upstream is configured (gateway.upstream)")
            await outcomes.deny(inbound, admission.failed(error), send)
            return
        try:
            body = await read_body(self._body, inbound.headers, receive)
        except BastionError as exc:
            await outcomes.deny(inbound, admission.failed(exc), send)
            return
        headers = self.upstream_headers(inbound, verdict, body)
        target = inbound.raw_path.decode("latin-1")
        if inbound.query:
            target += "?" + inbound.query.decode("latin-1")
        started = False
        try:
            async with self._proxy.request(
                method=verdict.facts.method,
                target=target,
                headers=headers,
                body=body.stream if body.stream is not None else body.data,
            ) as response:
                try:
                    await outcomes.record(verdict, response.status)
                except AuditUnavailableError as exc:
                    await outcomes.deny(inbound, admission.failed(exc), send)
                    return
                limits = rate_headers(admission.limit)
                upstream = _without_own(outcomes.cors.strip_upstream(response.headers), limits)
                response_headers = [
                    *outcomes.headers.merged(upstream, https=inbound.https),
                    *outcomes.cors.actual(inbound.origin),
                    *limits,
                    (_REQUEST_ID, inbound.request_id.encode()),
                ]
                started = True
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status,
                        "headers": response_headers,
                    }
                )
                async for chunk in response.body():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                outcomes.metrics.observe("proxy", response.status)
        except BastionError as exc:
            if started:
                log.warning("upstream failed mid-response (%s): connection cut", exc.code)
                return
            failure = body.failure[0] if body.failure else None
            cause: BastionError = failure if isinstance(failure, BastionError) else exc
            await outcomes.deny(inbound, admission.failed(cause), send)

    def upstream_headers(self, inbound: Inbound, verdict: Verdict, body: RequestBody) -> Headers:
        dropped: tuple[bytes, ...] = _CREDENTIAL_HEADERS
        if body.replaced_length:
            dropped += (b"content-length",)
        out = [(n, v) for n, v in strip_for_upstream(inbound.headers) if n.lower() not in dropped]
        out += self.forwarded_headers(inbound, verdict)
        return out

    def forwarded_headers(self, inbound: Inbound, verdict: Verdict) -> Headers:
        """``X-Forwarded-*`` set by bastion, the request id and the identity headers."""
        forwarded_for = inbound.peer or ""
        if is_trusted(inbound.peer, self._trusted):
            prior = [v.decode("latin-1") for n, v in inbound.headers if n == b"x-forwarded-for"]
            forwarded_for = ", ".join([*prior, forwarded_for]) if prior else forwarded_for
        out: Headers = [
            (b"x-forwarded-for", forwarded_for.encode("latin-1")),
            (b"x-forwarded-proto", b"https" if inbound.https else b"http"),
        ]
        # The edge let through one valid Host, or none (HTTP/1.0): then there is nothing to say,
        # and an empty X-Forwarded-Host would only invite the upstream to build "http:///" links.
        host = next((v for n, v in inbound.headers if n.lower() == b"host"), None)
        if host is not None:
            out.append((b"x-forwarded-host", host))
        out.append((_REQUEST_ID, inbound.request_id.encode()))
        if verdict.identity is not None:
            out += identity_headers(verdict.identity, self._signer, self._clock)
        return out


def _without_own(upstream: Headers, limits: Headers) -> Headers:
    """The upstream's response headers but those bastion answers with itself: its request id
    (the one its audit event has) and, when bastion limits this request, the ``RateLimit-*``
    of its own limit. A client never sees two values, one of them not bastion's; an
    upstream's own limits still show where bastion sets none, and its ``Retry-After`` (on a
    503, say) always does."""
    own = {_REQUEST_ID, *(name for name, _ in limits)}
    return [(n, v) for n, v in upstream if n.lower() not in own]
