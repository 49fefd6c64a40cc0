"""`AuditedReads`: an admin API read's one audit event, with the status it is answered with.

A read changes nothing, so no transaction records it; `require` leaves the admitted verdict in
the request's state and this middleware records it as the answer starts, with that answer's
status: ``200``, or the ``404`` of a name not found, or the ``403`` of a read refused after
admission (`refused_after_admission` replaces the verdict), never an allow and then a deny
for one request. With ``security.audit.required`` a read whose event cannot be written is
answered ``503`` instead, like every other request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.errors import AuditUnavailableError
from bastion.gateway.api.deps import READS, api_event
from bastion.gateway.problem_handlers import problem_response
from bastion.services.access import Verdict
from bastion.services.audit import AuditSink
from bastion.wiring import Services


class AuditedReads:
    def __init__(self, app: ASGIApp, *, services: Services, audit: AuditSink) -> None:
        self.app = app
        self._services = services
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READS:
            await self.app(scope, receive, send)
            return
        refused = False

        async def send_recorded(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the answer was replaced by a 503
            if message["type"] == "http.response.start":
                verdict = (scope.get("state") or {}).get("bastion_admitted")
                if isinstance(verdict, Verdict):
                    event = api_event(self._services, verdict, message["status"])
                    try:
                        await self._audit.record(event)
                    except AuditUnavailableError as exc:
                        refused = True
                        answer = problem_response(Request(scope, receive), exc)
                        await answer(scope, receive, send)
                        return
            await send(message)

        await self.app(scope, receive, send_recorded)
