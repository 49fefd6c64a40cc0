"""Policy test files for ``bastion authz test``: golden cases users keep in their own CI.

A file is a mapping with ``cases:``, a list of::

    - name: alice may execute the classifier      # optional
      principal: alice@example.com
      tenant: default                              # optional: the principal's tenant
      target: acme                                 # optional: the tenant acted in
      action: execute
      resource: patterns/content-classifier
      scopes: [patterns:read]                      # optional: a scoped credential
      context: {clientIp: 10.0.0.1, mfa: true, authMethod: password}   # optional
      expect: allow                                # allow | deny
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from bastion.config.loader import format_key_path
from bastion.config.models_base import ConfigModel, NonEmptyStr, UtcDatetime
from bastion.config.yaml_reader import read_yaml
from bastion.errors import ConfigError, ConfigIssue


class CaseContext(ConfigModel):
    client_ip: NonEmptyStr | None = None
    mfa: bool = False
    auth_method: NonEmptyStr = "test"
    time: UtcDatetime | None = None


class AuthzCase(ConfigModel):
    name: NonEmptyStr | None = None
    principal: NonEmptyStr
    tenant: NonEmptyStr | None = None
    target: NonEmptyStr | None = None
    action: NonEmptyStr
    resource: NonEmptyStr
    scopes: tuple[NonEmptyStr, ...] | None = None
    context: CaseContext = CaseContext()
    expect: Literal["allow", "deny"]

    def title(self) -> str:
        return self.name or f"{self.principal} {self.action} {self.resource}"


class AuthzCaseFile(ConfigModel):
    cases: tuple[AuthzCase, ...]


def load_cases(path: Path) -> AuthzCaseFile:
    """Parse one case file; `ConfigError` with every problem and its key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue("", f"{path}: is not UTF-8 text")]) from None
    data = read_yaml(text, str(path))
    try:
        return AuthzCaseFile.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        issues = [
            ConfigIssue(f"{path}: {format_key_path(tuple(e['loc']))}", e["msg"])
            for e in exc.errors()
        ]
        raise ConfigError(issues) from None
