"""Reading bastion.yaml: YAML, ``${VAR}`` expansion, ``env:``/``file:`` references, error messages.

Order of work: parse the YAML (duplicate keys are an error), resolve references in every string
value, validate with the pydantic models, then translate every problem into a ``ConfigIssue``
located by its dotted key path as written in the file (``gateway.routes[2].method``). Messages
never contain a value from the file, so a secret cannot leak through an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bastion.config.models import BastionConfig
from bastion.config.models_base import KeyPath, NestedValueError, format_key_path
from bastion.config.paths import anchor_paths
from bastion.errors import ConfigError, ConfigIssue, SecretReferenceError

__all__ = ["format_key_path", "load_config", "parse_config"]

MAX_REFERENCED_FILE_BYTES = 1024 * 1024
# YAML aliases can turn a few lines into billions of values; no real config comes close.
_MAX_VALUES = 100_000

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPANSION = re.compile(r"(?P<escape>\$\$\{)|\$\{(?P<body>[^{}]*)\}|(?P<broken>\$\{)")
_EXPANSION_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_MALFORMED = "has a malformed ${...} (write ${NAME} or ${NAME:-default}, or $${ for a literal ${)"
_VAULT = "vault: references need the vault secrets provider, which is not yet supported"


def load_config(
    path: str | Path | None, *, environ: Mapping[str, str] | None = None
) -> BastionConfig:
    """Load and validate a bastion.yaml; ``None`` gives the defaults. Raises ConfigError."""
    if path is None:
        return BastionConfig()
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or "unreadable"
        raise ConfigError([ConfigIssue("", f"{path}: cannot read: {reason}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue("", f"{path}: is not UTF-8 text")]) from None
    return parse_config(text, source=str(path), environ=environ, base_dir=path.parent)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> BastionConfig:
    """Validate config text. ``environ`` defaults to ``os.environ``.

    With ``base_dir`` (the directory of the file, as `load_config` passes it), relative
    ``file:`` references and every relative path-valued key (`bastion.config.paths`) resolve
    against it. Without, ``file:`` resolves against the working directory and paths are kept as
    written (so they too are relative to the working directory when used).

    Raises SecretReferenceError when a reference does not resolve, else ConfigError, each
    carrying every issue found, in file order.
    """
    data = _read_yaml(text, source)
    if data is None:  # an empty file, or only comments
        data = {}
    if not isinstance(data, dict):
        message = f"{source}: the top level must be a mapping (security:, gateway:, storage:)"
        raise ConfigError([ConfigIssue("", message)])
    resolver = _ReferenceResolver(
        os.environ if environ is None else environ,
        Path.cwd() if base_dir is None else base_dir,
    )
    resolved = resolver.resolve(data, ())
    try:
        config = BastionConfig.model_validate(resolved)
    except ValidationError as exc:
        unresolved = [path for path, _ in resolver.issues]
        issues = resolver.issues + [
            (path, message)
            for path, message in validation_issues(exc)
            if not any(path[: len(bad)] == bad for bad in unresolved)
        ]
    else:
        if not resolver.issues:
            return config if base_dir is None else anchor_paths(config, base_dir)
        issues = resolver.issues
    ordered = [ConfigIssue(format_key_path(p), m) for p, m in _in_file_order(issues, data)]
    raise (SecretReferenceError if resolver.issues else ConfigError)(ordered)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key written twice in one mapping (which one wins?)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError([ConfigIssue("", f"{where}: {problem}")]) from None
    except yaml.YAMLError:
        # Other YAML errors quote the offending text; say nothing about it.
        raise ConfigError([ConfigIssue("", f"{source}: not valid YAML")]) from None


class _ReferenceResolver:
    """Copies the raw YAML data with ``${VAR}``, ``env:`` and ``file:`` resolved; notes issues."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.issues: list[tuple[KeyPath, str]] = []
        self._budget = _MAX_VALUES

    def resolve(self, value: object, path: KeyPath) -> object:
        self._budget -= 1
        if self._budget < 0:
            raise ConfigError([ConfigIssue("", f"the file has more than {_MAX_VALUES} values")])
        if isinstance(value, dict):
            return {key: self.resolve(item, (*path, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str):
            return self._resolve_string(value, path)
        return value

    def _resolve_string(self, value: str, path: KeyPath) -> str:
        scheme, colon, rest = value.partition(":")
        if colon and scheme == "vault":
            self.issues.append((path, _VAULT))
            return value
        if colon and scheme in ("env", "file"):
            expanded = self._expand(rest, path)
            if expanded is None:
                return value
            resolved = self._env(expanded, path) if scheme == "env" else self._file(expanded, path)
            return value if resolved is None else resolved
        expanded = self._expand(value, path)
        return value if expanded is None else expanded

    def _expand(self, value: str, path: KeyPath) -> str | None:
        """``${VAR}`` and ``${VAR:-default}`` substituted; None (issues recorded) on failure."""
        failed = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal failed
            if match["escape"]:
                return "${"
            body = _EXPANSION_BODY.fullmatch(match["body"] or "")
            if body is None:
                failed = True
                self.issues.append((path, _MALFORMED))
                return ""
            found = self.environ.get(body["name"])
            if found:
                return found
            if body["default"] is not None:
                return body["default"]
            if found is not None:
                return found
            failed = True
            self.issues.append((path, f"environment variable {body['name']} is not set"))
            return ""

        expanded = _EXPANSION.sub(substitute, value)
        return None if failed else expanded

    def _env(self, name: str, path: KeyPath) -> str | None:
        if not _NAME.fullmatch(name):
            self.issues.append((path, "env: needs a variable name, like env:OIDC_CLIENT_SECRET"))
            return None
        if name not in self.environ:
            self.issues.append((path, f"environment variable {name} is not set"))
            return None
        return self.environ[name]

    def _file(self, name: str, path: KeyPath) -> str | None:
        if not name:
            self.issues.append((path, "file: needs a path, like file:/run/secrets/pepper"))
            return None
        target = Path(name).expanduser()
        if not target.is_absolute():
            target = self.base_dir / target
        try:
            with target.open("rb") as handle:
                content = handle.read(MAX_REFERENCED_FILE_BYTES + 1)
        except OSError as exc:
            self.issues.append((path, f"cannot read file {target}: {exc.strerror or 'unreadable'}"))
            return None
        if len(content) > MAX_REFERENCED_FILE_BYTES:
            self.issues.append((path, f"file {target} is larger than 1 MiB"))
            return None
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            self.issues.append((path, f"file {target} is not UTF-8 text"))
            return None
        return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def validation_issues(exc: ValidationError) -> list[tuple[KeyPath, str]]:
    """Every pydantic error as (key path, short message), in pydantic's order."""
    issues: list[tuple[KeyPath, str]] = []
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors:
        loc = tuple(error["loc"])
        # A list whose items failed also counts as "too short"; the item errors say it better.
        if error["type"] == "too_short" and _has_errors_below(loc, errors):
            continue
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, NestedValueError):
            issues.extend(((*loc, *relative), message) for relative, message in cause.issues)
        else:
            issues.append((loc, error_message(error)))
    return issues


def _has_errors_below(loc: KeyPath, errors: list[ErrorDetails]) -> bool:
    depth = len(loc)
    return any(len(e["loc"]) > depth and tuple(e["loc"][:depth]) == loc for e in errors)


_FIXED_MESSAGES: Mapping[str, str] = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "datetime_type": "must be a date and time like 2025-01-31T00:00:00Z",
    "datetime_parsing": "must be a date and time like 2025-01-31T00:00:00Z",
    "datetime_from_date_parsing": "must be a date and time like 2025-01-31T00:00:00Z",
}

_BOUND_MESSAGES: Mapping[str, str] = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
}

_QUOTED = re.compile(r"'([^']*)'")


def error_message(error: ErrorDetails) -> str:
    """A short, value-free message for one pydantic error."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _BOUND_MESSAGES:
        return _BOUND_MESSAGES[kind].format(**ctx)
    if kind in ("literal_error", "enum"):
        choices = _QUOTED.findall(str(ctx.get("expected", "")))
        return "must be one of: " + ", ".join(choices) if choices else "is not an allowed value"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def _in_file_order(issues: list[tuple[KeyPath, str]], data: object) -> list[tuple[KeyPath, str]]:
    """Sort issues by where their key (or its closest written parent) appears in the file."""
    positions: dict[KeyPath, int] = {}

    def number(value: object, path: KeyPath) -> None:
        positions[path] = len(positions)
        if isinstance(value, dict):
            for key, item in value.items():
                number(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                number(item, (*path, index))

    number(data, ())

    def position(path: KeyPath) -> int:
        for length in range(len(path), -1, -1):
            if path[:length] in positions:
                return positions[path[:length]]
        return 0

    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda issue: position(issue[0]))
