"""RFC 8693 token exchange: an agent (the actor) gets a token to act on behalf of a user.

The new token's ``sub`` is the user and its ``act`` claim names the agent (RFC 8693 section
4.1). A request made with it must be allowed for both of them, each with its own roles and
scopes, so the effective permissions are the intersection of the two; audit events name both.
Only bastion's own access tokens are accepted as subject and actor tokens, and a delegated
token cannot be exchanged again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bastion.backends.protocols import Storage
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.services.authn import Authenticated
from bastion.services.clock import Clock
from bastion.services.directory import record
from bastion.services.token_verifier import IssuedTokenVerifier
from bastion.services.tokens import IssuedTokens, TokenService, actor_of, narrow

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a type URN)


class TokenExchange:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        tokens: TokenService,
        verifier: IssuedTokenVerifier,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._tokens = tokens
        self._verifier = verifier

    def exchange(
        self,
        *,
        subject_token: str,
        subject_token_type: str,
        client: Authenticated | None,
        actor_token: str | None,
        actor_token_type: str | None,
        scope: str | None,
    ) -> IssuedTokens:
        if subject_token_type != ACCESS_TOKEN_TYPE:
            raise RequestRejectedError("subject_token_type must be an access token")
        if actor_token is not None and actor_token_type != ACCESS_TOKEN_TYPE:
            raise RequestRejectedError("actor_token_type must be an access token")
        self._tokens.warm()
        now = self._clock.now()
        with self._storage.transaction() as tx:
            subject, claims = self._verifier.verify_claims(tx, subject_token)
            # Revoking either token (or its session) revokes the delegated one, which never
            # outlives them nor an API key they came from (their ``expires_at``).
            sources = [str(claims["jti"])]
            actor, actor_family = client, None
            if actor_token is not None:
                actor, actor_claims = self._verifier.verify_claims(tx, actor_token)
                sources.append(str(actor_claims["jti"]))
                actor_family = _family(actor_claims)
            if actor is None:
                raise RequestRejectedError("an actor_token or client authentication is required")
            _check_pair(subject, actor)
            scopes = narrow(scope, subject.scopes)
            if scope is not None:
                narrow(scope, actor.scopes)
            tenant = tx.tenants.get(subject.principal.tenant_id)
            ends = [e for e in (subject.expires_at, actor.expires_at) if e is not None]
            acting = replace(actor, actor=None)
            delegated = Authenticated(
                subject.principal, subject.credential_id, "token_exchange", scopes, acting
            )
            token, seconds = self._tokens.access_token(
                delegated,
                tenant=tenant,
                now=now,
                not_after=min(ends) if ends else None,
                family=_family(claims),
                actor_family=actor_family,
                sources=tuple(sources),
            )
            details: dict[str, Any] = {
                "grant": "token_exchange",
                "subject": {"type": subject.principal.kind.value, "id": subject.principal.name},
                "actor": {"type": actor.principal.kind.value, "id": actor.principal.name},
                "scopes": list(scopes or ()),
            }
            record(
                tx,
                action="token.exchange",
                tenant=tenant.name,
                now=now,
                actor=actor_of(actor.principal, via="oauth"),
                resource={"type": subject.principal.kind.value, "id": subject.principal.name},
                details=details,
            )
        return IssuedTokens(token, seconds, scopes)


def _family(claims: dict[str, Any]) -> str | None:
    """The session (refresh-token family) a token of a login comes from, if it does."""
    family = claims.get("fam")
    return family if isinstance(family, str) else None


def _check_pair(subject: Authenticated, actor: Authenticated) -> None:
    if subject.actor is not None or actor.actor is not None:
        raise AuthorizationError(("a delegated token cannot be exchanged again",))
    if actor.principal.id == subject.principal.id:
        raise AuthorizationError(("a principal cannot act on its own behalf",))
    if actor.principal.tenant_id != subject.principal.tenant_id:
        raise AuthorizationError(("the actor and the subject belong to different tenants",))
