"""Every exception bastion raises on purpose, in one tree.

    BastionError                      code = "bastion_error"
    ├── ConfigError                   a bastion.yaml that cannot be used (carries every issue)
    │   └── SecretReferenceError      an env:/file:/${VAR} reference that does not resolve
    ├── StorageError                  the database or cache failed; callers deny
    │   ├── NotFoundError             the named row does not exist (in the caller's tenant)
    │   └── ConflictError             a unique name is taken
    ├── AuthenticationError           the request carries no valid credential (HTTP 401)
    ├── AuthorizationError            the principal may not do this (HTTP 403)
    ├── RequestRejectedError          the request itself is malformed or ambiguous (HTTP 400)
    ├── AuditUnavailableError         an audit record could not be written (HTTP 503)
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


class AuditUnavailableError(BastionError):
    """An audit record could not be made durable, so the request may not proceed."""

    code = "audit_unavailable"


class UpstreamError(BastionError):
    """The protected upstream service could not be reached or failed mid-response."""

    code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    """The protected upstream did not answer in time."""

    code = "upstream_timeout"
