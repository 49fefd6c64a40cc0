"""The decision pipeline every mode shares (proxy, forward-auth, WebSocket, CORS preflight), in
DESIGN.md order:

`Gate.screen`: network (IP allowlist) → global rate limit → the input checks of the request
line and headers (Host, transfer coding, canonical path), whose refusal is charged to the
client address's per-client bucket; then `Gate.admit`: header-level body checks → credential
and certificate → `AccessService.check_cached` on the event loop when the caller is
remembered, else `AccessService.check` off it (authenticate, route, per-route allowlist,
authorize) → per-client / per-tenant / per-pattern rate limits. A preflight is decided by the
CORS policy instead of by authentication, and charged like an anonymous request.

Nothing is answered, and nothing audited, before the allowlist and the global limit have let
a request through: a client outside the allowlist learns nothing more than ``403``.

The result is an `Admission`: the verdict (allowed or carrying the deny's error) and the rate
limit numbers for the response headers. Every failure becomes a denying verdict, never an
exception and never an allow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bastion.core.netrules import Allowlist
from bastion.core.ratelimit import LimitDecision
from bastion.errors import BastionError, ClientAddressDeniedError, RequestRejectedError
from bastion.gateway.headers import Headers
from bastion.gateway.limits import RateLimiter, limited_error
from bastion.gateway.network import certificate_of, credential_of
from bastion.services.access import AccessService, RequestFacts, Verdict
from bastion.services.clock import Clock


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    limit: LimitDecision = field(default_factory=LimitDecision.unlimited)
    extra: dict[str, Any] | None = None  # audit details (which rate limit refused)
    detail: str | None = None  # what the client is told of an input refusal (its own fault)

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    def failed(self, error: BastionError) -> Admission:
        """This admission turned into a deny by a later stage (body check, upstream, audit)."""
        v = self.verdict
        return Admission(
            Verdict(v.facts, v.match, v.identity, error, v.reasons), self.limit, self.extra
        )


class Gate:
    def __init__(
        self,
        *,
        access: AccessService,
        limiter: RateLimiter | None,
        allowlist: Allowlist,
        clock: Clock,
    ) -> None:
        self._access = access
        self._limiter = limiter
        self._allowlist = allowlist
        self._clock = clock

    async def screen(
        self,
        facts: RequestFacts,
        *,
        rejected: BastionError | None = None,
        global_limit: bool = True,
    ) -> Admission | None:
        """The stages before anything is answered: the IP allowlist, then the global bucket
        (``global_limit`` False for bastion's own endpoints, which it must not lock out), then
        the input checks of the request line and headers, which the caller ran: ``rejected``
        is how the request failed them. None when the request goes on."""
        refused = address_refusal(self._allowlist, facts)
        if refused is not None:
            return refused
        if global_limit and self._limiter is not None:
            try:
                decision = await self._limiter.check_global()
            except BastionError as exc:
                return _deny(facts, exc)
            if not decision.allowed:
                return _limited(Verdict(facts, None, None, None), decision)
        if rejected is not None:
            return await self.refuse(facts, rejected)
        return None

    async def refuse(self, facts: RequestFacts, error: BastionError) -> Admission:
        """The deny of a request that failed a check before authentication, charged to the
        client address's per-client bucket like every failed request: once that is empty the
        answer is ``429``, so malformed requests cost a client as much as any other."""
        detail = str(error) if isinstance(error, RequestRejectedError) else None
        return await self._charge(Verdict(facts, None, None, error), detail=detail)

    async def admit(
        self,
        facts: RequestFacts,
        *,
        headers: Headers,
        scope: Any,
        precheck: Callable[[], None] | None = None,
        decide: Callable[[RequestFacts], Verdict] | None = None,
    ) -> Admission:
        """Decide one request that `screen` let through; ``facts`` has no credential yet (it
        is read from ``headers``). ``precheck`` is the header-level body check; ``decide``
        replaces authentication and authorization (a CORS preflight)."""
        if precheck is not None:
            try:
                precheck()
            except BastionError as exc:
                return await self.refuse(facts, exc)
        if decide is not None:
            return await self._charge(decide(facts))
        try:
            facts = replace(
                facts,
                credential=credential_of(headers),
                certificate=certificate_of(scope, now=self._clock.now()),
            )
        except BastionError as exc:
            verdict = Verdict(facts, None, None, exc)
        else:
            cached = self._access.check_cached(facts)
            if cached is None:
                verdict = await asyncio.to_thread(self._access.check, facts)
            else:
                verdict = cached
        return await self._charge(verdict)

    async def _charge(self, verdict: Verdict, *, detail: str | None = None) -> Admission:
        """The per-client bucket (and for an allowed request the tenant and pattern ones);
        ``detail`` stays with the verdict's own deny, not with a rate-limit refusal."""
        limiter = self._limiter
        if limiter is None:
            return Admission(verdict, detail=detail)
        try:
            decision = await limiter.check_request(verdict)
        except BastionError as exc:
            return Admission(Verdict(verdict.facts, verdict.match, verdict.identity, exc))
        if not decision.allowed:
            return _limited(verdict, decision)
        return Admission(verdict, decision, detail=detail)

    async def recheck(self, verdict: Verdict) -> Verdict:
        """Decide an allowed request again, uncached, with the credential it was allowed with:
        for a connection that outlives its handshake (a revoked key, an expired token, a
        removed binding must end it). No rate limit: the client sent nothing new."""
        return await asyncio.to_thread(self._access.check, verdict.facts)


def address_refusal(allowlist: Allowlist, facts: RequestFacts) -> Admission | None:
    """The deny of a client outside ``security.network.ipAllowlist`` (an address that could
    not be read included), or None when the allowlist lets it in."""
    if allowlist.permits(facts.client_ip):
        return None
    reasons = ("client address is not in security.network.ipAllowlist",)
    return _deny(facts, ClientAddressDeniedError(reasons), reasons=reasons)


def _deny(facts: RequestFacts, error: BastionError, *, reasons: tuple[str, ...] = ()) -> Admission:
    return Admission(Verdict(facts, None, None, error, reasons))


def _limited(verdict: Verdict, decision: LimitDecision) -> Admission:
    error = limited_error(decision)
    denied = Verdict(verdict.facts, verdict.match, verdict.identity, error, verdict.reasons)
    return Admission(denied, decision, extra={"limit": error.limit_name})
