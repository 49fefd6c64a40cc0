"""``bastion token``: the keys bastion signs its tokens with (list, rotate)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import when

app = typer.Typer(help="Token signing keys.", no_args_is_help=True)


@app.command("list-signing-keys")
def list_signing_keys(ctx: typer.Context) -> None:
    """Every signing key: kid, algorithm, created, retired and published until."""
    keys = state(ctx).services().identity.signing_keys.list()
    table = Table("Kid", "Algorithm", "Created", "Retired", "Published until")
    for key in keys:
        until = when(key.publish_until) if key.retired_at else "active"
        table.add_row(key.kid, key.algorithm, when(key.created_at), when(key.retired_at), until)
    Console(width=200).print(table)


@app.command("rotate-signing-key")
def rotate_signing_key(
    ctx: typer.Context,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="RS256 (default), ES256 or EdDSA.")
    ] = None,
) -> None:
    """Make a new signing key; the old one stays in the JWKS until its last token expires."""
    key = (
        state(ctx)
        .services()
        .identity.signing_keys.rotate(algorithm=algorithm, actor=operator_actor())
    )
    typer.echo(f"new signing key {key.kid} ({key.algorithm})")
