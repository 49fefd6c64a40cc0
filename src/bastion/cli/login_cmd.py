"""``bastion login``, ``bastion logout`` and ``bastion whoami``: a person at a terminal logs in
to a (remote) bastion once; the refresh token is kept in the user's config directory (0600)
and rotated on every use, and commands that talk to that bastion get access tokens from it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from bastion.errors import AuthenticationError, BastionError

CREDENTIALS_FILE = "credentials.json"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/bastion`` or ``~/.config/bastion``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bastion"


def save_credentials(document: dict[str, Any]) -> Path:
    """Write the credentials file readable by its owner only (0600, in a 0700 directory)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / CREDENTIALS_FILE
    temporary = directory / f".{CREDENTIALS_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def load_credentials() -> dict[str, Any]:
    path = config_dir() / CREDENTIALS_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        raise AuthenticationError("not_logged_in") from None
    if not isinstance(document, dict) or "refreshToken" not in document:
        raise AuthenticationError("not_logged_in")
    return document


def _request(url: str, *, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise BastionError(f"cannot reach {url}: {exc.__class__.__name__}") from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def access_token() -> tuple[dict[str, Any], str]:
    """A fresh access token from the stored refresh token, whose successor is stored at once."""
    saved = load_credentials()
    url = saved["server"] + saved["prefix"] + "/oauth/token"
    form = urlencode({"grant_type": "refresh_token", "refresh_token": saved["refreshToken"]})
    status, body = _request(
        url, body=form.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    if status != 200 or not isinstance(body, dict):
        raise BastionError("the stored login is no longer valid; run `bastion login` again")
    save_credentials({**saved, "refreshToken": body["refresh_token"]})
    return saved, str(body["access_token"])


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def login(
    server: Annotated[str, typer.Option("--server", help="Bastion's base URL.")],
    user: Annotated[str, typer.Option("--user", help="Your login.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Your tenant.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="gateway.prefix there.")] = "/_bastion",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in with a password; keep the refresh token in the config directory (0600)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = str(typer.prompt("Password", hide_input=True))
    payload: dict[str, str] = {"username": user, "password": password}
    if tenant:
        payload["tenant"] = tenant
    server = server.rstrip("/")
    status, body = _request(
        server + prefix + "/login",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    if status != 200 or not isinstance(body, dict):
        raise BastionError("login failed")
    saved = {
        "server": server,
        "prefix": prefix,
        "tenant": body.get("tenant"),
        "username": user,
        "refreshToken": body["refresh_token"],
    }
    path = save_credentials(saved)
    typer.echo(f"logged in to {server} as {user}; credentials in {path}")


def logout() -> None:
    """Revoke the stored refresh token and forget it."""
    saved = load_credentials()
    _request(
        saved["server"] + saved["prefix"] + "/logout",
        body=json.dumps({"refreshToken": saved["refreshToken"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    (config_dir() / CREDENTIALS_FILE).unlink(missing_ok=True)
    typer.echo("logged out")


def whoami() -> None:
    """Ask the bastion you logged in to who you are (through the admin API)."""
    saved, token = access_token()
    status, body = _request(
        saved["server"] + saved["prefix"] + "/api/v1/whoami",
        body=None,
        headers={"Authorization": f"Bearer {token}"},
    )
    if status != 200:
        raise BastionError(f"whoami failed with HTTP {status}")
    typer.echo(json.dumps(body))
