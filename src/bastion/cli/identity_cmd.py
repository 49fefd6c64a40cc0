"""``bastion user`` and ``bastion service-account``."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.context import operator_actor, password_from_stdin, prompt_password, state
from bastion.cli.principal_cmds import (
    TenantOption,
    add_principal_commands,
    principal_json,
    remote_json,
    remote_of,
)
from bastion.cli.remote import segment
from bastion.core.model import PrincipalKind
from bastion.services.directory import get_principal, record
from bastion.services.lookups import get_tenant

user_app = typer.Typer(help="Users (people).", no_args_is_help=True)
service_account_app = typer.Typer(help="Service accounts.", no_args_is_help=True)


def _default(ctx: typer.Context, tenant: str | None) -> str:
    return tenant or state(ctx).services().config.security.default_tenant


# -- users -----------------------------------------------------------------------------------


def _read_password(prompt: bool, stdin: bool) -> str | None:
    if stdin:
        return password_from_stdin()
    if prompt:
        return prompt_password(confirm=True)
    return None


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The login, usually an email.")],
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    password: Annotated[bool, typer.Option("--password", help="Prompt for a password.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    password_hash: Annotated[
        str | None,
        typer.Option("--password-hash", help="Import a bcrypt ($2b$…) or Argon2id hash."),
    ] = None,
    tenant: TenantOption = None,
) -> None:
    """Create a user, optionally with a password (policy-checked) or an imported hash."""
    if password + password_stdin + (password_hash is not None) > 1:
        raise typer.BadParameter(
            "give at most one of --password, --password-stdin, --password-hash"
        )
    secret = _read_password(password, password_stdin)
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body = {"name": name, "displayName": display_name}
        if secret is not None:
            body["password"] = secret
        elif password_hash is not None:
            body["passwordHash"] = password_hash
        typer.echo(remote_json(remote.post("/users", body)))
        return
    services = state(ctx).services()
    identity = services.identity
    now = services.clock.now()
    with services.storage.transaction() as tx:
        found = get_tenant(tx, _default(ctx, tenant))
        user = identity.directory.create_principal(
            tx,
            tenant=found,
            kind=PrincipalKind.USER,
            name=name,
            display_name=display_name,
            actor=operator_actor(),
        )
        if secret is not None:
            identity.passwords.set_password(tx, user, secret, now=now)
        elif password_hash is not None:
            identity.passwords.import_hash(tx, user, password_hash, now=now)
    typer.echo(principal_json(user, []))


@user_app.command("set-password")
def user_set_password(
    ctx: typer.Context,
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    tenant: TenantOption = None,
) -> None:
    """Set a user's password (prompted, or from stdin); the policy and history apply, and the
    user's sessions (refresh tokens and the access tokens issued from them) end."""
    secret = _read_password(not password_stdin, password_stdin) or ""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        remote.put(f"/users/{segment(name)}/password", {"password": secret})
        typer.echo(f"password set for {name}")
        return
    services = state(ctx).services()
    passwords = services.identity.passwords
    now = services.clock.now()
    with services.storage.transaction() as tx:
        found = get_tenant(tx, _default(ctx, tenant))
        user = get_principal(tx, found, PrincipalKind.USER, name)
        ended = passwords.set_password(tx, user, secret, now=now)
        record(
            tx,
            action="user.password.set",
            tenant=found.name,
            now=now,
            actor=operator_actor(),
            resource={"type": "user", "id": user.name},
            details=ended.details(),
        )
    passwords.sessions.announce(ended)
    typer.echo(f"password set for {user.name}")


add_principal_commands(user_app, PrincipalKind.USER, "user")


# -- service accounts ------------------------------------------------------------------------


@service_account_app.command("create")
def service_account_create(
    ctx: typer.Context,
    name: str,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    tenant: TenantOption = None,
) -> None:
    """Create a service account (client secret: `bastion auth create-key --owner NAME`)."""
    remote = remote_of(ctx, tenant)
    if remote is not None:
        body = {"name": name, "displayName": display_name}
        typer.echo(remote_json(remote.post("/serviceaccounts", body)))
        return
    services = state(ctx).services()
    created = services.identity.directory.create(
        tenant_name=_default(ctx, tenant),
        kind=PrincipalKind.SERVICE_ACCOUNT,
        name=name,
        display_name=display_name,
        actor=operator_actor(),
    )
    typer.echo(principal_json(created, []))


add_principal_commands(service_account_app, PrincipalKind.SERVICE_ACCOUNT, "service account")
