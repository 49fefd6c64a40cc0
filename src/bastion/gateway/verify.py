"""The forward-auth endpoint, ``<prefix>/verify``: decides the original request a proxy asks
about (`forward_auth.original_request`) through the same stages as a proxied request
(`pipeline.Gate.screen`, then `Gate.admit`) and answers 200 with identity headers, or a deny."""

from __future__ import annotations

from bastion.crypto.identity import IdentitySigner
from bastion.errors import BastionError
from bastion.gateway.forward_auth import OriginalRequest, original_request
from bastion.gateway.headers import Headers, Network, identity_headers, is_trusted, request_host
from bastion.gateway.limits import rate_headers
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.outcomes import Inbound, Outcomes
from bastion.gateway.pipeline import Admission, Gate
from bastion.gateway.responses import Send
from bastion.services.clock import Clock

MODE = "forward-auth"


class ForwardAuthEndpoint:
    """Answers forward-auth checks. Wired by `bastion.gateway.edge.Edge`."""

    def __init__(
        self,
        *,
        prefix: str,
        trusted_proxies: tuple[Network, ...],
        gate: Gate,
        outcomes: Outcomes,
        signer: IdentitySigner,
        clock: Clock,
        metrics: GatewayMetrics,
    ) -> None:
        self._path = (prefix + "/verify").encode()
        self._trusted_proxies = trusted_proxies
        self._gate = gate
        self._outcomes = outcomes
        self._signer = signer
        self._clock = clock
        self._metrics = metrics

    def suffix(self, raw_path: bytes) -> str | None:
        """The raw path after ``<prefix>/verify`` ("" for the check path itself), or None when
        the request is not a forward-auth check.

        Told apart on the raw path, before any canonical-path check: the suffix is the original
        path of an Envoy-style check, and its ambiguities are a forward-auth deny (403), since a
        400 would be a 500 at nginx. The prefix itself is matched literally, never decoded.
        """
        if raw_path == self._path:
            return ""
        if raw_path.startswith(self._path + b"/"):
            return raw_path[len(self._path) :].decode("latin-1")
        return None

    async def answer(self, inbound: Inbound, suffix: str | None, send: Send) -> None:
        """Decide the original request and answer 200 / 401 / 403 / 429."""
        rejected: BastionError | None = None
        try:
            original = self._original(inbound, suffix)
        except BastionError as exc:
            facts, rejected = inbound.facts(inbound.raw_path.decode("latin-1")), exc
        else:
            facts = inbound.facts(original.path, method=original.method)
        admission = await self._gate.screen(facts, rejected=rejected)
        if admission is None:
            admission = await self._gate.admit(facts, headers=inbound.headers, scope=inbound.scope)
        if not admission.allowed:
            await self._outcomes.deny(inbound, admission, send, mode=MODE, extra={"mode": MODE})
            return
        await self._allow(inbound, admission, send)

    def _original(self, inbound: Inbound, suffix: str | None) -> OriginalRequest:
        """The request a forward-auth check asks about; `BastionError` (a deny) when unclear."""
        request_host(inbound.headers, http_version=inbound.scope.get("http_version", "1.1"))
        return original_request(
            method=inbound.method,
            suffix=suffix,
            query=inbound.query,
            headers=inbound.headers,
            trusted=is_trusted(inbound.peer, self._trusted_proxies),
        )

    async def _allow(self, inbound: Inbound, admission: Admission, send: Send) -> None:
        try:
            await self._outcomes.record(admission.verdict, 200, {"mode": MODE})
        except BastionError as exc:
            await self._outcomes.deny(inbound, admission.failed(exc), send, mode=MODE)
            return
        headers: Headers = [
            (b"cache-control", b"no-store"),
            (b"x-bastion-request-id", inbound.request_id.encode()),
            *rate_headers(admission.limit),
        ]
        if admission.verdict.identity is not None:
            headers += identity_headers(admission.verdict.identity, self._signer, self._clock)
        self._metrics.observe(MODE, 200)
        await self._outcomes.send_own(inbound, send, 200, headers, b"")
