"""Every exception bastion raises on purpose, in one tree.

    BastionError                      code = "bastion_error"
    ├── ConfigError                   a bastion.yaml that cannot be used (carries every issue)
    │   └── SecretReferenceError      an env:/file:/${VAR} reference that does not resolve
    ├── StorageError                  the database or cache failed; callers deny
    │   ├── NotFoundError             the named row does not exist (in the caller's tenant)
    │   └── ConflictError             a unique name is taken
    ├── AuthenticationError           the request carries no valid credential (HTTP 401)
    ├── AuthorizationError            the principal may not do this (HTTP 403)
    │   ├── ClientAddressDeniedError  the client address is outside an IP allowlist (HTTP 403)
    │   └── PasswordChangeRequiredError  right password, but expired: set a new one (HTTP 403)
    ├── RequestRejectedError          the request itself is malformed or ambiguous (HTTP 400)
    │   ├── InvalidBodyError          a body that breaks a rule: bad or too deep JSON (HTTP 400)
    │   ├── PayloadTooLargeError      a body over the size limit (HTTP 413)
    │   └── UnsupportedMediaTypeError a content type that is not allowed (HTTP 415)
    ├── RateLimitedError              a rate limit is exhausted (HTTP 429, Retry-After)
    ├── RateLimitUnavailableError     the shared rate-limit store failed, fail-closed (HTTP 503)
    ├── LoginBusyError                too many logins being checked at once (HTTP 503)
    ├── AuditUnavailableError         an audit record could not be written (HTTP 503)
    ├── AuditIntegrityError           the audit trail does not verify (tampered or truncated)
    ├── PolicyError                   a Cedar policy set that does not load (last good one stays)
    └── UpstreamError                 the protected service failed (HTTP 502)
        └── UpstreamTimeoutError      the protected service was too slow (HTTP 504)

Foreign errors (sqlalchemy, psycopg, aiohttp, redis) are translated into these at the boundary
of `bastion.backends` and `bastion.gateway.proxy`; nothing above those layers sees them. Each
class carries a stable snake_case ``code`` that clients and tests can rely on. Messages never
contain a credential or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass


class BastionError(Exception):
    """The root of every error bastion raises on purpose."""

    code = "bastion_error"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file, located by its dotted key path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(BastionError):
    """A configuration that cannot be used; ``issues`` lists every problem found."""

    code = "config_invalid"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(issue) for issue in issues))


class SecretReferenceError(ConfigError):
    """A secret reference (``env:``, ``file:``, ``${VAR}``) that does not resolve."""

    code = "secret_reference_unresolved"


class StorageError(BastionError):
    """The storage backend failed. Security decisions that needed it deny."""

    code = "storage_unavailable"


class SpoiledUnitError(StorageError):
    """A unit of work left after ``operation`` failed part-way in it: it was rolled back
    instead of committed (see `bastion.backends.protocols.AuditStore.insert`)."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"commit a transaction failed: {operation} failed in it, so none of it was kept"
        )


class NotFoundError(StorageError):
    """The named object does not exist, or is not visible in the caller's tenant."""

    code = "not_found"


class ConflictError(StorageError):
    """A name that must be unique is already taken."""

    code = "conflict"


class AuthenticationError(BastionError):
    """No valid credential. The message is the same for every cause; the audit log has it.

    ``reason`` is the real cause (``missing_credential``, ``malformed_key``, ``unknown_key``,
    ``revoked_key``, ``expired_key``, ``disabled_principal``): for the audit log only, never
    for the client.
    """

    code = "unauthenticated"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("authentication required")


class AuthorizationError(BastionError):
    """A valid principal that may not perform the action; ``reasons`` explain the deny."""

    code = "forbidden"

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons) or "access denied")


class RequestRejectedError(BastionError):
    """The request is malformed or ambiguous (for example a non-canonical path)."""

    code = "bad_request"


class UnsupportedTransferCodingError(RequestRejectedError):
    """The request body has a transfer coding other than ``chunked`` (RFC 9112 section 6.1:
    501). Passing it on dechunked would hand the upstream coded bytes it cannot tell apart."""

    code = "unsupported_transfer_coding"


class MisdirectedRequestError(RequestRejectedError):
    """The request's ``Host`` is not one ``gateway.allowedHosts`` names (RFC 9110 section
    15.5.20: 421): the upstream would build its links from it."""

    code = "misdirected_request"


class AuditUnavailableError(BastionError):
    """An audit record could not be made durable, so the request may not proceed."""

    code = "audit_unavailable"


class UpstreamError(BastionError):
    """The protected upstream service could not be reached or failed mid-response."""

    code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    """The protected upstream did not answer in time."""

    code = "upstream_timeout"


class ClientAddressDeniedError(AuthorizationError):
    """The client address is not in an IP allowlist (or is unknown, which never matches)."""

    code = "address_not_allowed"


class InvalidBodyError(RequestRejectedError):
    """The body breaks a rule; ``reason`` is ``invalid_json``, ``json_too_deep`` or
    ``json_too_large``."""

    code = "invalid_body"

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class PayloadTooLargeError(RequestRejectedError):
    """The request body is larger than ``security.inputValidation`` allows."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(RequestRejectedError):
    """The request body's content type is not in ``allowedContentTypes``."""

    code = "unsupported_media_type"


class RateLimitedError(BastionError):
    """A rate limit refused the request; the numbers are what the client may be told."""

    code = "rate_limited"

    def __init__(
        self, limit_name: str, *, limit: int, retry_after: int, reset_after: int, window: int
    ) -> None:
        self.limit_name = limit_name
        self.limit = limit
        self.retry_after = retry_after
        self.reset_after = reset_after
        self.window = window
        super().__init__(f"rate limit {limit_name} exhausted")


class RateLimitUnavailableError(BastionError):
    """The shared rate-limit store is unreachable and ``failClosed`` is set."""

    code = "ratelimit_unavailable"


class PasswordChangeRequiredError(AuthorizationError):
    """The password was right but has expired: the caller must set a new one to log in."""

    code = "password_change_required"

    def __init__(self) -> None:
        super().__init__(("the password has expired; log in again with a new password",))


class LoginBusyError(BastionError):
    """Too many logins are being checked at once; the client should retry shortly (HTTP 503)."""

    code = "login_busy"


class PolicyError(BastionError):
    """A Cedar policy set that cannot be used: unreadable, unparsable, invalid or empty."""

    code = "policy_invalid"


class AuditIntegrityError(BastionError):
    """``bastion audit verify`` found the trail altered; the message names the first broken
    sequence number and why."""

    code = "audit_integrity"

    def __init__(self, first_broken_seq: int, reason: str) -> None:
        self.first_broken_seq = first_broken_seq
        self.reason = reason
        super().__init__(
            f"the audit trail does not verify: first broken seq {first_broken_seq}: {reason}"
        )
