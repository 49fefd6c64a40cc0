"""`OwnApps`: how the edge runs bastion's own applications (the admin API, and the login, logout,
OAuth and ``/.well-known`` endpoints).

``security.network.ipAllowlist`` applies to them as to proxied requests (``403``, audited), in
the edge before they are reached (`bastion.gateway.pipeline.Gate.screen`). They read a body
whole before they authenticate, so its size is capped here whatever ``inputValidation.maxSize``
says: a declared length over the cap is ``413``, audited, before a byte is read, and a streamed
body is refused as it passes the cap; no client, authenticated or not, can make bastion hold
more. Every answer carries bastion's response headers (HSTS over TLS, nosniff, referrer policy,
frame-ancestors), the request's id, and ``Cache-Control: no-store`` unless the application chose
its own (the JWKS is public).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.validation import body_too_large, capped, declared_length

AUTH_MAX_BODY = 64 * 1024
"""Bytes a body to the login, logout and OAuth endpoints may have (one small form or object)."""
ADMIN_API_MAX_BODY = 8 * 1024 * 1024
"""Bytes a body to the admin API may have: its largest is a Cedar policy text (at most
1,000,000 characters, up to six bytes each as JSON escapes)."""


class OwnApps:
    def __init__(self, outcomes: Outcomes) -> None:
        self._outcomes = outcomes

    async def serve(
        self,
        app: ASGIApp,
        scope: Scope,
        inbound: Inbound,
        receive: Receive,
        send: Send,
        *,
        max_body: int = AUTH_MAX_BODY,
    ) -> None:
        length = declared_length(inbound.headers)
        if length is not None and length > max_body:
            error = body_too_large(max_body)
            admission = self._outcomes.reject(inbound, error)
            await self._outcomes.deny(inbound, admission, send, detail=str(error))
            return
        await app(scope, capped(receive, max_body), self._with_headers(inbound, send))

    def _with_headers(self, inbound: Inbound, send: Send) -> Send:
        policy, https = self._outcomes.headers, inbound.https
        request_id = inbound.request_id.encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = policy.merged(message.get("headers", []), https=https)
                present = {name.lower() for name, _ in headers}
                if b"x-bastion-request-id" not in present:
                    headers.append((b"x-bastion-request-id", request_id))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers
