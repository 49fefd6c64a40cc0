"""The stored login of ``bastion login``: one JSON file in the user's config directory, readable
by its owner only, holding the server and its current refresh token (never a password, never
an access token)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bastion.errors import BastionError

CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = ".credentials.lock"
NOT_LOGGED_IN = "not logged in: run `bastion login --server URL --user NAME` first"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/bastion`` or ``~/.config/bastion``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bastion"


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


def save_credentials(document: dict[str, Any]) -> Path:
    """Replace the credentials file atomically, owner-only (0600, in a 0700 directory)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / CREDENTIALS_FILE
    temporary = directory / f".{CREDENTIALS_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def load_credentials() -> dict[str, Any]:
    """The stored login; a `BastionError` saying how to log in when there is none."""
    try:
        document = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        raise BastionError(NOT_LOGGED_IN) from None
    if not isinstance(document, dict) or not isinstance(document.get("refreshToken"), str):
        raise BastionError(NOT_LOGGED_IN)
    return document


def has_credentials() -> bool:
    return credentials_path().is_file()


def forget_credentials() -> None:
    credentials_path().unlink(missing_ok=True)


@contextlib.contextmanager
def credentials_locked() -> Iterator[None]:
    """Hold the credentials lock: refresh tokens are single use, so two commands run at once
    must rotate one after the other (the second would otherwise replay a used token, which
    the server treats as theft and answers by revoking the whole login)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
