"""Reading bastion.yaml: YAML, ``${VAR}`` expansion, ``env:``/``file:`` references, error messages.

Order of work: parse the YAML (`bastion.config.yaml_reader`: duplicate keys are an error),
resolve references in every string value (marking what they yield as ``ReferencedText``, the
only strings a boolean or number key accepts), validate with the pydantic models, then translate
every problem into a ``ConfigIssue`` located by its dotted key path as written in the file
(``gateway.routes[2].method``). Messages never contain a value from the file, so a secret
cannot leak through an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from bastion.config.issues import validation_issues
from bastion.config.models import BastionConfig
from bastion.config.models_base import KeyPath, ReferencedText, format_key_path
from bastion.config.paths import anchor_paths
from bastion.config.yaml_reader import MAX_DEPTH, read_yaml
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
    data = read_yaml(text, source)
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
        # Keys are read as written, camelCase only: a snake_case spelling of a key is unknown,
        # so one file cannot hold the same setting twice under two names.
        config = BastionConfig.model_validate(resolved, by_alias=True, by_name=False)
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
        if len(path) > MAX_DEPTH:  # aliases can nest deeper than the text does
            message = f"nested deeper than {MAX_DEPTH} levels"
            raise ConfigError([ConfigIssue(format_key_path(path[:MAX_DEPTH]), message)])
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
            return value if resolved is None else ReferencedText(resolved)
        expanded = self._expand(value, path)
        if expanded is None or expanded == value:
            return value
        return ReferencedText(expanded)

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
