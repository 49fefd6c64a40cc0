"""``bastion login``, ``bastion logout`` and ``bastion whoami``: a person at a terminal logs in
to a (remote) bastion once; the refresh token is kept in the user's config directory (0600)
and rotated on every use, and commands that talk to that bastion get access tokens from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.context import password_from_stdin, prompt_password, refuse_blank, state
from bastion.cli.credentials import (
    credentials_locked,
    forget_credentials,
    load_credentials,
    save_credentials,
)
from bastion.cli.remote import Endpoint, client_from_credentials, problem_line, send
from bastion.errors import BastionError


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def login(
    ctx: typer.Context,
    server: Annotated[str, typer.Option("--server", help="Bastion's base URL.")],
    user: Annotated[str, typer.Option("--user", help="Your login.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Your tenant.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="gateway.prefix there.")] = "/_bastion",
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", help="CA bundle for its TLS certificate (a private CA)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in with a password; keep the refresh token in the config directory (0600)."""
    refuse_blank(ctx)
    endpoint = Endpoint(
        server.rstrip("/"), prefix, str(ca_file.resolve()) if ca_file is not None else None
    )
    if endpoint.in_clear:
        typer.echo(
            f"warning: {endpoint.server} is plain http: the password and tokens cross the"
            " network unencrypted; use https",
            err=True,
        )
    password = password_from_stdin() if password_stdin else prompt_password(confirm=False)
    payload: dict[str, str] = {"username": user, "password": password}
    if tenant:
        payload["tenant"] = tenant
    answer = send(endpoint, "POST", "/login", json_body=payload)
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 401:  # the same answer for every reason, by design
        raise BastionError("login failed")
    if answer.status != 200 or not isinstance(body.get("refresh_token"), str):
        raise BastionError(f"login failed: {problem_line(answer)}")
    saved = {
        "server": endpoint.server,
        "prefix": prefix,
        "tenant": body.get("tenant"),
        "username": user,
        "refreshToken": body["refresh_token"],
    }
    if endpoint.ca_file is not None:
        saved["caFile"] = endpoint.ca_file
    with credentials_locked():
        path = save_credentials(saved)
    typer.echo(f"logged in to {endpoint.server} as {user}; credentials in {path}")


def logout() -> None:
    """Revoke the stored refresh token on the server and forget it."""
    with credentials_locked():
        saved = load_credentials()
        endpoint = Endpoint(
            str(saved["server"]), str(saved.get("prefix", "/_bastion")), saved.get("caFile")
        )
        try:
            answer = send(
                endpoint, "POST", "/logout", json_body={"refreshToken": saved["refreshToken"]}
            )
            failure = None if answer.status < 400 else problem_line(answer)
        except BastionError as exc:
            failure = str(exc)
        forget_credentials()
    if failure is not None:
        typer.echo(
            f"warning: the server did not revoke the login ({failure}); it expires on its own",
            err=True,
        )
    typer.echo("logged out")


def whoami(ctx: typer.Context) -> None:
    """Ask the bastion you logged in to who you are (through the admin API)."""
    cli = state(ctx)
    typer.echo(json.dumps(client_from_credentials(cli.server, cli.ca_file).get("/whoami")))
