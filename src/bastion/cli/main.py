"""The ``bastion`` entry point: the command tree and the one place CLI errors are printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion import __version__
from bastion.cli import (
    agent_cmd,
    audit_cmd,
    auth_cmd,
    authz_cmd,
    config_cmd,
    group_cmd,
    identity_cmd,
    login_cmd,
    role_cmd,
    rule_cmd,
    run_cmd,
    tenant_cmd,
    token_cmd,
)
from bastion.cli.context import resolve_state
from bastion.core.audit_formats import printable
from bastion.errors import BastionError, ConfigError

app = typer.Typer(
    name="bastion",
    help="Bastion: a self-hosted security control plane and identity-aware gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(audit_cmd.app, name="audit")
authz_cmd.app.add_typer(rule_cmd.app, name="rule")
app.add_typer(authz_cmd.app, name="authz")
app.add_typer(role_cmd.app, name="role")
app.add_typer(tenant_cmd.tenant_app, name="tenant")
app.add_typer(identity_cmd.user_app, name="user")
app.add_typer(group_cmd.group_app, name="group")
app.add_typer(identity_cmd.service_account_app, name="service-account")
app.add_typer(agent_cmd.app, name="agent")
app.add_typer(token_cmd.app, name="token")
login_cmd.register(app)
run_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="bastion.yaml to use (default: ./bastion.yaml, or $BASTION_CONFIG).",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Work remotely on this bastion (you logged in to), or $BASTION_SERVER.",
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option("--ca-file", help="CA bundle for the server's TLS certificate."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    ctx.obj = resolve_state(config, server=server, ca_file=ca_file)


def usage_line(exc: typer.TyperException) -> str:
    """A usage error in one line, as every other CLI error: "missing argument 'name' (see
    'bastion user create --help')" instead of click's usage block and boxed message."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(message.split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{message} (see '{ctx.command_path} --help')"


MAX_ERROR_LENGTH = 1000


def say_error(message: object) -> None:
    """``error: message`` on stderr as one terminal-safe line: control characters (newlines,
    ANSI escapes) shown escaped, and a huge value echoed back cut in the middle."""
    text = printable(str(message))
    if len(text) > MAX_ERROR_LENGTH:
        half = MAX_ERROR_LENGTH // 2
        text = f"{text[:half]}…{text[-half:]}"
    print(f"error: {text}", file=sys.stderr)


def undecodable_argument(arguments: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (Python keeps its bytes as lone surrogates,
    which no database, hash or terminal accepts), shown with its bytes escaped."""
    for argument in arguments:
        if any("\udc80" <= ch <= "\udcff" for ch in argument):
            raw = argument.encode("utf-8", "surrogateescape")
            return raw.decode("utf-8", "backslashreplace")
    return None


def _stdout_closed() -> None:
    """The reader went away (``bastion audit list | head -1``): stop quietly with status 1,
    as click does for the same, instead of a second error when Python flushes stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


def main() -> None:
    """Run the CLI: one clear line on stderr and a non-zero exit for every error."""
    undecodable = undecodable_argument(sys.argv[1:])
    if undecodable is not None:
        say_error(f"argument '{undecodable}' is not valid UTF-8")
        sys.exit(2)
    try:
        result = app(standalone_mode=False, prog_name="bastion")
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group named alone: its help answers
            exc.show()  # type: ignore[attr-defined]
        else:
            say_error(usage_line(exc))
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except ConfigError as exc:
        for issue in exc.issues:
            say_error(issue)
        sys.exit(1)
    except BastionError as exc:
        say_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _stdout_closed()
    except OSError as exc:  # a file named on the command line that cannot be used
        where = f"{exc.filename}: " if exc.filename is not None else ""
        say_error(f"{where}{exc.strerror or type(exc).__name__}")
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("BASTION_DEBUG"):
            raise
        print(
            f"error: unexpected {type(exc).__name__} (set BASTION_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
