"""Which configured keys bastion does not enforce yet, so nobody mistakes a key for a control.

Add a dotted key path to ``ENFORCED`` in the change that makes bastion enforce it. A path covers
all the keys below it.
"""

from __future__ import annotations

from pydantic import BaseModel

from bastion.config.models import BastionConfig

__all__ = ["ENFORCED", "describe_not_yet_enforced", "not_yet_enforced"]

ENFORCED: frozenset[str] = frozenset(
    {
        "storage.url",
        "gateway.listen",
        "gateway.upstream",
        "gateway.prefix",
        "gateway.routes",
        "gateway.publicPaths",
        "gateway.trustedProxies",
        "gateway.allowedHosts",
        "gateway.timeouts",
        "gateway.connections",
        "gateway.websocket",
        "gateway.cors",
        "gateway.securityHeaders",
        "storage.redisUrl",
        "storage.redisPrefix",
        "security.mtls.enabled",
        "security.mtls.serverCert",
        "security.mtls.serverKey",
        "security.mtls.clientCA",
        "security.mtls.clientAuth",
        "security.agentAuth.method",
        "security.inputValidation",
        "security.network",
        "security.rateLimit",
        "security.pepper",
        "security.defaultTenant",
        "security.authentication.apiKeys",
        "security.authentication.jwt",
        "security.authentication.passwords",
        "security.authentication.lockout",
        "security.authentication.tokens",
        "security.authentication.basicAuth",
        "security.agentAuth.token",
        "security.rbac.enabled",
        "security.rbac.defaultRole",
        "security.rbac.roles",
        "security.rbac.bindings",
        "security.rbac.platformBindings",
        "security.rbac.resourceRules",
        "security.policies",
        "security.audit.enabled",
        "security.audit",
        "security.dataProtection.masking",
    }
)


def not_yet_enforced(config: BastionConfig) -> list[str]:
    """Dotted paths of keys set in the file whose feature is not enforced yet, shallowest first.

    Defaults never count, and neither does a section that only says ``enabled: false``.
    """
    return _walk(config, "")


def describe_not_yet_enforced(config: BastionConfig) -> list[str]:
    """One line per unenforced key: ``security.mtls: not yet enforced``."""
    return [f"{path}: not yet enforced" for path in not_yet_enforced(config)]


def _walk(model: BaseModel, prefix: str) -> list[str]:
    found: list[str] = []
    for key, value in _set_keys(model):
        path = f"{prefix}{key}"
        if path in ENFORCED:
            continue
        if isinstance(value, BaseModel) and any(e.startswith(f"{path}.") for e in ENFORCED):
            found.extend(_walk(value, f"{path}."))
        elif not (isinstance(value, BaseModel) and _switched_off_or_empty(value)):
            found.append(path)
    return found


def _set_keys(model: BaseModel) -> list[tuple[str, object]]:
    """(alias, value) of every key written in the file, in model order, then free-form keys."""
    written = model.model_fields_set
    keys = [
        (field.alias or name, getattr(model, name))
        for name, field in type(model).model_fields.items()
        if name in written
    ]
    keys.extend((name, value) for name, value in (model.model_extra or {}).items())
    return keys


def _switched_off_or_empty(section: BaseModel) -> bool:
    """True for ``{}`` and ``{enabled: false}``: turning off an absent feature is harmless."""
    written = section.model_fields_set
    if written - {"enabled"}:
        return False
    return "enabled" not in written or getattr(section, "enabled", None) is False
