"""``bastion config validate``: every problem with its key path, and what is not yet enforced.

It runs the same start-up checks as ``bastion serve`` (`bastion.wiring.check_startup`), so
``ok`` means serve would start as far as configuration goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.context import state
from bastion.config import describe_not_yet_enforced, load_config
from bastion.errors import BastionError, ConfigError
from bastion.wiring import check_startup

app = typer.Typer(help="Check configuration.", no_args_is_help=True)


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Config file (default: --config).")] = None,
) -> None:
    """Print `ok`, or every error with its key path and exit 1."""
    path = file or state(ctx).config_path
    if not path.exists():
        raise BastionError(f"{path} does not exist")  # printed as one terminal-safe line
    try:
        config = load_config(path)
        check_startup(config, config_dir=path.resolve().parent)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue))
        raise typer.Exit(1) from None
    typer.echo("ok")
    for line in describe_not_yet_enforced(config):
        typer.echo(f"warning: {line}", err=True)
