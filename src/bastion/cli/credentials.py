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


def private_dir() -> Path:
    """The config directory, created 0700; refused (like ssh refuses a key others can read)
    when another user owns it or others may use it: they could read the refresh token, or swap
    the stored server for their own and collect the next access token."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ensure_private(directory, "chmod 700")
    return directory


def _ensure_private(path: Path, fix: str) -> None:
    try:
        status = path.stat()
    except OSError as exc:
        raise BastionError(f"cannot read {path}: {exc.strerror}") from None
    if status.st_uid != os.geteuid() or status.st_mode & 0o077:
        raise BastionError(
            f"{path} must belong to you and be private ({fix} {path});"
            " bastion keeps no login in it as it is"
        )


def save_credentials(document: dict[str, Any]) -> Path:
    """Replace the credentials file atomically, owner-only (0600, in a 0700 directory)."""
    directory = private_dir()
    path = directory / CREDENTIALS_FILE
    temporary = directory / f".{CREDENTIALS_FILE}.{os.getpid()}"
    temporary.unlink(missing_ok=True)  # left by a crashed run of this process id
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(temporary, flags, 0o600), "w") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load_credentials() -> dict[str, Any]:
    """The stored login; a `BastionError` saying how to log in when there is none, or that
    the file is not private."""
    path = credentials_path()
    if path.is_file():
        _ensure_private(path.parent, "chmod 700")
        _ensure_private(path, "chmod 600")
    try:
        document = json.loads(path.read_text())
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
    fd = os.open(private_dir() / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
