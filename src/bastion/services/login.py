"""Password login with brute-force throttling, uniform failures and the truth in the audit log.

Three short steps, so that no database lock is held while a hash is computed:

1. count the attempt against the account and the client address (one transaction); a locked
   key refuses it. Unknown accounts are counted too, so a lock says nothing about existence.
   The same transaction removes a few counters that have come to act as new ones
   (`bastion.core.lockout.forget_time`), so a spray of made-up names cannot grow the table;
2. verify the password (or a dummy hash, for an unknown or disabled account: the same work,
   so the same time; for an attempt a lock refused, a wait as long as a verification, which
   costs no CPU when a storm keeps hitting locked accounts);
3. record the outcome: a success refunds the attempt, upgrades a bcrypt or outdated hash to
   Argon2id, stores a ``newPassword`` (which ends the user's other sessions, counted in the
   event's ``sessionsEnded``; the session this login starts comes after, and stands), and is
   audited ``login.success``, and starts the login's session (``start``) in the same
   transaction, which first checks, with the password row locked, that the password is still
   the one verified: a change committed meanwhile (an administrator's reset) refuses the login
   (``password_changed``), and one committing later ends the session it started. A failure is
   audited ``login.failure`` with the real reason (``unknown_user``, ``wrong_password``,
   ``locked_account``, ``locked_address``, ``disabled_principal``, ``disabled_tenant``,
   ``no_password``, ``password_changed``).

Every failure raises the same `AuthenticationError` for the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import PasswordCredential
from bastion.core.lockout import ThrottlePolicy, count_attempt, refund_attempt
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.core.names import canonical_name, storable
from bastion.core.password_policy import is_expired, normalised
from bastion.errors import AuthenticationError, NotFoundError, PasswordChangeRequiredError
from bastion.services.audit import append_events, build_event
from bastion.services.changes import MAX_NAME_LENGTH
from bastion.services.clock import Clock
from bastion.services.passwords import HashingPool, PasswordService
from bastion.services.request_events import client_text
from bastion.services.sessions import EndedSessions
from bastion.services.tokens import IssuedTokens


@dataclass(frozen=True, slots=True)
class LoginRequest:
    tenant: str
    username: str
    password: str
    client_ip: str | None
    user_agent: str | None
    new_password: str | None = None
    request_id: str | None = None  # the gateway's, so the answer and the audit event meet


# Starts the session of a successful login, inside the transaction that recorded it.
StartSession = Callable[[UnitOfWork, Principal, Tenant], IssuedTokens]


@dataclass(frozen=True, slots=True)
class LoggedIn:
    principal: Principal
    tenant: Tenant
    tokens: IssuedTokens | None = None  # when the login was asked to start a session


@dataclass(frozen=True, slots=True)
class _Attempt:
    tenant: Tenant | None
    principal: Principal | None
    credential: PasswordCredential | None
    refusal: str | None
    account_key: str
    address_key: str


# Refusals a lock decides before any password is looked at: the lock is counted for unknown
# accounts too, so a wait as long as a verification is all the answer needs (no hash work).
_LOCKS = frozenset({"locked_account", "locked_address"})

# Counters forgotten (removed once they act as new ones) by each counted attempt. An attempt
# adds at most two, so however many names and addresses a spray tries, the table grows no
# further than the counters still in force; no sweeper to schedule.
FORGET_PER_ATTEMPT = 4


def account_key(tenant: str, username: str) -> str:
    return f"acct:{canonical_name(tenant)}:{canonical_name(username)}"


def address_key(client_ip: str | None) -> str:
    return f"ip:{client_ip or 'unknown'}"


class LoginService:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        passwords: PasswordService,
        account_policy: ThrottlePolicy,
        address_policy: ThrottlePolicy,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._passwords = passwords
        self._account = account_policy
        self._address = address_policy

    def login(self, request: LoginRequest, *, start: StartSession | None = None) -> LoggedIn:
        """Check a password and, with ``start``, begin a session. Blocking and CPU-heavy:
        `login_in` is the event loop's form."""
        request = _storable(request)
        attempt = self._count(request)
        reason, upgraded = self._check(request, attempt)
        return self._finish(request, attempt, reason, upgraded, start)

    async def login_in(
        self, request: LoginRequest, pool: HashingPool, *, start: StartSession | None = None
    ) -> LoggedIn:
        """`login` inside one admission of ``pool``: the two short transactions at normal
        priority, the hash (which holds no lock) at the pool's lower one."""
        request = _storable(request)
        attempt = await pool.step(lambda: self._count(request))
        reason, upgraded = await pool.hash(lambda: self._check(request, attempt))
        return await pool.step(lambda: self._finish(request, attempt, reason, upgraded, start))

    def _check(
        self, request: LoginRequest, attempt: _Attempt
    ) -> tuple[str | None, PasswordCredential | None]:
        """The hash work: the failure reason (None: the password is right) and, after a
        right one, the Argon2id replacement of a bcrypt or outdated hash."""
        hasher = self._passwords.hasher
        password = request.password
        ok = False
        if attempt.refusal is None and attempt.credential is not None:
            stored = attempt.credential.hash
            canonical = normalised(password)
            ok = hasher.verify(stored, canonical)
            if not ok and stored.startswith("$2") and canonical != password:
                # An imported bcrypt hash may have been made from the password as typed, not
                # NFKC'd; a second (costly) check only when the two forms differ.
                ok = hasher.verify(stored, password)
        elif attempt.refusal in _LOCKS:
            hasher.pause_as_verify()
        else:
            hasher.verify_dummy(password)
        reason = attempt.refusal or (None if ok else "wrong_password")
        upgraded = None
        if ok and attempt.credential is not None:
            upgraded = self._passwords.rehash(attempt.credential, password)
        return reason, upgraded

    def _count(self, request: LoginRequest) -> _Attempt:
        now = self._clock.now()
        keys = (account_key(request.tenant, request.username), address_key(request.client_ip))
        with self._storage.transaction() as tx:
            tenant, principal, credential, refusal = _lookup(tx, request)
            account, account_ok = count_attempt(
                tx.throttles.lock(keys[0], at=now), self._account, now=now
            )
            address, address_ok = count_attempt(
                tx.throttles.lock(keys[1], at=now), self._address, now=now
            )
            tx.throttles.put(account)
            tx.throttles.put(address)
            tx.throttles.forget(now=now, limit=FORGET_PER_ATTEMPT)
        if not account_ok:
            refusal = "locked_account"
        elif not address_ok:
            refusal = "locked_address"
        return _Attempt(tenant, principal, credential, refusal, *keys)

    def _finish(
        self,
        request: LoginRequest,
        attempt: _Attempt,
        reason: str | None,
        upgraded: PasswordCredential | None,
        start: StartSession | None,
    ) -> LoggedIn:
        now = self._clock.now()
        expired = False
        ended: EndedSessions | None = None
        tokens: IssuedTokens | None = None
        with self._storage.transaction() as tx:
            if reason is None and (changed := _changed_since_checked(tx, attempt)):
                reason, upgraded = changed, None
            if reason is None:
                assert attempt.principal is not None and attempt.tenant is not None
                account = tx.throttles.lock(attempt.account_key, at=now)
                tx.throttles.put(refund_attempt(account, clear=True))
                address = tx.throttles.lock(attempt.address_key, at=now)
                tx.throttles.put(refund_attempt(address, clear=False))
                if upgraded is not None:
                    tx.passwords.put(upgraded)
                assert attempt.credential is not None
                expired = is_expired(attempt.credential.changed_at, self._passwords.policy, now=now)
                if request.new_password is not None:
                    ended = self._passwords.set_password(
                        tx, attempt.principal, request.new_password, now=now
                    )
                    expired = False
                if start is not None and not expired:
                    tokens = start(tx, attempt.principal, attempt.tenant)
            self._audit(tx, request, attempt, reason, upgraded is not None, expired, ended)
        if ended is not None:
            self._passwords.sessions.announce(ended)
        if reason is not None:
            raise AuthenticationError(reason)
        if expired:
            raise PasswordChangeRequiredError()
        assert attempt.principal is not None and attempt.tenant is not None
        return LoggedIn(attempt.principal, attempt.tenant, tokens)

    def _audit(
        self,
        tx: UnitOfWork,
        request: LoginRequest,
        attempt: _Attempt,
        reason: str | None,
        upgraded: bool,
        expired: bool,
        ended: EndedSessions | None,
    ) -> None:
        actor: dict[str, Any] = {
            "type": "user" if attempt.principal is not None else "anonymous",
            "id": canonical_name(request.username),
            "ip": request.client_ip,
            "userAgent": client_text(request.user_agent),
        }
        details: dict[str, Any] = {"method": "password"}
        if reason is not None:
            details["reason"] = reason
        if upgraded:
            details["rehashed"] = "argon2id"
        if expired:
            details["reason"] = "password_expired"
        if ended is not None:
            details.update(ended.details())
        tenant = attempt.tenant.name if attempt.tenant else canonical_name(request.tenant)
        event = build_event(
            action="login.success" if reason is None and not expired else "login.failure",
            outcome="success" if reason is None and not expired else "failure",
            tenant=tenant,
            now=self._clock.now(),
            actor=actor,
            resource={"type": "user", "id": canonical_name(request.username)},
            details=details,
            request={"requestId": request.request_id} if request.request_id else None,
        )
        append_events(tx, [event])


def _changed_since_checked(tx: UnitOfWork, attempt: _Attempt) -> str | None:
    """How the account changed after this login read the hash it checked, if it did: the
    password changed or removed (``password_changed``), the user disabled. The password row
    stays locked until the login commits (`PasswordStore.lock`, which a password change and a
    disable take first too), so a change either came before and is seen here, or comes after
    and ends the session this login starts."""
    checked = attempt.credential
    assert checked is not None
    current = tx.passwords.lock(checked.tenant_id, checked.principal_id)
    if current is None or current.hash != checked.hash:
        return "password_changed"
    if tx.principals.get(checked.tenant_id, checked.principal_id).disabled:
        return "disabled_principal"
    return None


def _bounded(name: str) -> str:
    """A name longer in canonical form than any stored name can be, cut to that length and
    marked with "…" (which no stored name of that length can hold): still unknown, and the
    throttle key and audit columns made from it stay short enough for any database's index
    (PostgreSQL's holds about 2,700 bytes a row)."""
    canonical = canonical_name(name)
    return name if len(canonical) <= MAX_NAME_LENGTH else canonical[:MAX_NAME_LENGTH] + "…"


# A lone surrogate or a NUL in a name would fail in the database driver after the attempt was
# counted. The gateway already replaces them (JSON can carry them); this keeps every other
# caller (HTTP Basic, the CLI) just as safe. The password needs nothing: the hasher takes any
# string.
def _storable(request: LoginRequest) -> LoginRequest:
    """``request`` with lone surrogates and NULs in its tenant and user names replaced by
    U+FFFD, and names too long to exist cut short (`_bounded`): an unknown name like any other,
    counted, checked against the dummy hash and audited."""
    tenant, username = _bounded(storable(request.tenant)), _bounded(storable(request.username))
    if tenant == request.tenant and username == request.username:
        return request
    return replace(request, tenant=tenant, username=username)


def _lookup(
    tx: UnitOfWork, request: LoginRequest
) -> tuple[Tenant | None, Principal | None, PasswordCredential | None, str | None]:
    try:
        tenant = tx.tenants.get_by_name(canonical_name(request.tenant))
        principal = tx.principals.get_by_name(tenant.id, canonical_name(request.username))
    except NotFoundError:
        return None, None, None, "unknown_user"
    if principal.kind is not PrincipalKind.USER:
        return tenant, None, None, "unknown_user"
    credential = tx.passwords.get(tenant.id, principal.id)
    if credential is None:
        return tenant, principal, None, "no_password"
    if principal.disabled:
        return tenant, principal, None, "disabled_principal"
    if tx.tenant_states.get(tenant.id).disabled:
        return tenant, principal, None, "disabled_tenant"
    return tenant, principal, credential, None
