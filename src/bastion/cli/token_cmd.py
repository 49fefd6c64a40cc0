"""``bastion token``: the keys bastion signs its tokens with (list, rotate) — locally, or
remotely through ``/v1/signingkeys``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.context import operator_actor, state
from bastion.cli.principal_cmds import when

app = typer.Typer(help="Token signing keys.", no_args_is_help=True)


@app.command("list-signing-keys")
def list_signing_keys(ctx: typer.Context) -> None:
    """Every signing key: kid, algorithm, created, retired and published until."""
    remote = state(ctx).remote()
    keys: list[dict[str, Any]]
    if remote is not None:
        keys = remote.get("/signingkeys")
    else:
        keys = [
            {
                "kid": key.kid,
                "algorithm": key.algorithm,
                "created": key.created_at,
                "retired": key.retired_at,
                "publishedUntil": key.publish_until,
            }
            for key in state(ctx).services().identity.signing_keys.list()
        ]
    table = Table("Kid", "Algorithm", "Created", "Retired", "Published until")
    for key in keys:
        until = when(key["publishedUntil"]) if key["retired"] else "active"
        created, retired = when(key["created"]), when(key["retired"])
        table.add_row(key["kid"], key["algorithm"], created, retired, until)
    Console(width=200).print(table)


@app.command("rotate-signing-key")
def rotate_signing_key(
    ctx: typer.Context,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="RS256 (default), ES256 or EdDSA.")
    ] = None,
) -> None:
    """Make a new signing key; the old one stays in the JWKS until its last token expires.
    Remotely only a principal of the platform tenant (security.defaultTenant) may rotate."""
    remote = state(ctx).remote()
    if remote is not None:
        created = remote.post("/signingkeys/rotate", {"algorithm": algorithm})
        kid, used = created["kid"], created["algorithm"]
    else:
        signing_keys = state(ctx).services().identity.signing_keys
        key = signing_keys.rotate(algorithm=algorithm, actor=operator_actor())
        kid, used = key.kid, key.algorithm
    typer.echo(f"new signing key {kid} ({used})")
