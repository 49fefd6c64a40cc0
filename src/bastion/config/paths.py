"""Relative file paths in bastion.yaml are relative to the file's directory, not the process's.

``bastion serve -c /etc/bastion/bastion.yaml`` started from ``/`` must read
``/etc/bastion/policies/main.cedar`` for ``files: [policies/main.cedar]``. The loader anchors
every path-valued key here, once, so no consumer joins paths with the working directory.
Absolute paths (and ``~/…``, expanded) are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from bastion.config.models import BastionConfig

__all__ = ["PATH_KEYS", "anchor_paths"]

M = TypeVar("M", bound=BaseModel)

# Attribute paths of every key that names a file, directory or socket (a tuple value: each item).
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("security", "mtls", "server_cert"),
    ("security", "mtls", "server_key"),
    ("security", "mtls", "client_ca"),
    ("security", "policies", "files"),
    ("security", "policies", "schema_file"),
    ("security", "audit", "file", "path"),
    ("security", "audit", "spool", "path"),
    ("security", "audit", "syslog", "socket"),
    ("security", "audit", "elasticsearch", "ca_file"),
    ("security", "audit", "splunk", "ca_file"),
)

_SQLITE = "sqlite:///"


def anchor_paths(config: BastionConfig, base_dir: Path) -> BastionConfig:
    """``config`` with every relative path (and a relative SQLite database) under ``base_dir``.

    Defaults count too: ``security.audit.spool.path`` ``./audit-spool`` and ``storage.url``
    ``sqlite:///./bastion.db`` land next to the bastion.yaml that was loaded.
    """
    base = base_dir.expanduser().absolute()
    for key in PATH_KEYS:
        config = _replace(config, key, base)
    storage = config.storage.model_copy(update={"url": _sqlite_url(config.storage.url, base)})
    return config.model_copy(update={"storage": storage})


def _anchor(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _replace(model: M, key: tuple[str, ...], base: Path) -> M:
    name, rest = key[0], key[1:]
    value = getattr(model, name)
    if value is None:
        return model
    if rest:
        updated: object = _replace(value, rest, base)
    elif isinstance(value, tuple):
        updated = tuple(_anchor(item, base) for item in value)
    else:
        updated = _anchor(value, base)
    return model.model_copy(update={name: updated})


def _sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///rel.db?x`` → ``sqlite:////base/rel.db?x``; other URLs are returned as is."""
    if not url.startswith(_SQLITE):
        return url
    database, question, query = url.removeprefix(_SQLITE).partition("?")
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    return f"{_SQLITE}{_anchor(database, base)}{question}{query}"
