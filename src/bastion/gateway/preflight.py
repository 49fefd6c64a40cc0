"""CORS preflights, answered by bastion itself: browsers send them without credentials, so
the CORS policy (`responses.CorsPolicy`) decides them instead of authentication, after the
same stages as any request (`pipeline.Gate.admit` with ``decide=``)."""

from __future__ import annotations

from bastion.errors import AuthorizationError, BastionError
from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.pipeline import Gate
from bastion.gateway.responses import CorsPolicy, Send
from bastion.gateway.validation import header
from bastion.services.access import RequestFacts, Verdict

_EXTRA = {"cors": "preflight"}


class PreflightEndpoint:
    """Answers CORS preflights with 204 and the granted headers, or a deny. Wired by
    `bastion.gateway.edge.Edge`."""

    def __init__(self, *, cors: CorsPolicy, gate: Gate, outcomes: Outcomes) -> None:
        self._cors = cors
        self._gate = gate
        self._outcomes = outcomes

    async def answer(self, inbound: Inbound, path: str, send: Send) -> None:
        granted = self._cors.preflight(
            inbound.origin,
            header(inbound.headers, b"access-control-request-method"),
            header(inbound.headers, b"access-control-request-headers"),
        )

        def decide(facts: RequestFacts) -> Verdict:
            if granted:
                return Verdict(facts, None, None, None, ("cors preflight",), public=True)
            reasons = ("cors preflight refused",)
            return Verdict(facts, None, None, AuthorizationError(reasons), reasons)

        admission = await self._gate.admit(
            inbound.facts(path), headers=inbound.headers, scope=inbound.scope, decide=decide
        )
        if not admission.allowed:
            await self._outcomes.deny(inbound, admission, send, extra=_EXTRA)
            return
        try:
            await self._outcomes.record(admission.verdict, 204, _EXTRA)
        except BastionError as exc:
            await self._outcomes.deny(inbound, admission.failed(exc), send)
            return
        await self._outcomes.send_own(inbound, send, 204, granted, b"")
