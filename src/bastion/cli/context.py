"""What every command shares: the configuration path, loading it, the operator identity, and
whether commands run locally (on the database bastion.yaml names) or remotely (through the
admin API of the bastion this terminal logged in to, `bastion.cli.remote`).

Remote mode is on when ``--server`` / ``$BASTION_SERVER`` is given, or when a stored login
exists, no configuration was named explicitly (``--config`` / ``$BASTION_CONFIG``) and there is
no bastion.yaml in the working directory.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from bastion.cli.credentials import has_credentials
from bastion.cli.remote import RemoteClient, client_from_credentials, unsupported
from bastion.config import BastionConfig, load_config
from bastion.config.units import MOMENT_OUT_OF_RANGE
from bastion.errors import BastionError
from bastion.services.audit.recorder import seal_each_commit
from bastion.wiring import Services, build_services

DEFAULT_CONFIG = "bastion.yaml"


@dataclass
class CliState:
    config_path: Path
    explicit: bool
    server: str | None = None
    ca_file: str | None = None
    command: str = "this command"
    _resolved: bool = field(default=False, init=False, repr=False)
    _client: RemoteClient | None = field(default=None, init=False, repr=False)

    def load(self) -> BastionConfig:
        """The configuration; defaults when no file exists at the default path."""
        if not self.config_path.exists():
            if self.explicit:
                raise typer.BadParameter(
                    f"{self.config_path} does not exist", param_hint="--config"
                )
            return load_config(None)
        return load_config(self.config_path)

    def remote(self) -> RemoteClient | None:
        """The admin API client in remote mode, else None (resolved once per command)."""
        if not self._resolved:
            # A bastion.yaml in the working directory wins over a stored login: an operator
            # on a server host never changes another bastion by accident.
            implicit = not self.explicit and not self.config_path.exists()
            if self.server is not None or (implicit and has_credentials()):
                self._client = client_from_credentials(self.server, self.ca_file)
            self._resolved = True
        return self._client

    def services(self) -> Services:
        """The local services; a command without a remote form stops here in remote mode."""
        if self.remote() is not None:
            unsupported(f"`{self.command}`")
        return self.local_services(one_shot=True)

    def local_services(self, *, one_shot: bool = False) -> Services:
        """The services of the local bastion.yaml, whatever the mode (serve, init, migrate).

        ``one_shot``: a command that ends when its work is done seals every commit that
        appends audit events, since no sealer runs after it (`seal_each_commit`)."""
        services = build_services(self.load())
        if one_shot:
            seal_each_commit(services.storage)
        return services


# Options whose empty value means something: a display name can be cleared.
MAY_BE_EMPTY = frozenset({"display_name"})


def refuse_blank(ctx: Any) -> None:  # a typer.Context, or the root context click hands back
    """An option or argument given as empty text, or as spaces only, is a mistake (a shell
    variable that was not set): refused naming it, rather than read as "not given" (the
    default tenant, no filter) or kept as a name nobody can type."""
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        values = value if isinstance(value, list | tuple) else [value]
        blank = any(isinstance(v, str) and not v.strip() for v in values)
        if blank and param.name not in MAY_BE_EMPTY:
            hint = " / ".join(f"'{name}'" for name in param.opts)
            raise typer.BadParameter("must not be empty", ctx=ctx, param_hint=hint)


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    refuse_blank(root)
    refuse_blank(ctx)
    obj = root.obj
    assert isinstance(obj, CliState)
    obj.command = "bastion " + ctx.command_path.removeprefix(root.command_path).strip()
    return obj


def resolve_state(
    option: Path | None, *, server: str | None = None, ca_file: str | None = None
) -> CliState:
    server = server or os.environ.get("BASTION_SERVER") or None
    ca_file = ca_file or os.environ.get("BASTION_CA_FILE") or None
    if option is not None:
        return CliState(option, explicit=True, server=server, ca_file=ca_file)
    env = os.environ.get("BASTION_CONFIG")
    if env:
        return CliState(Path(env), explicit=True, server=server, ca_file=ca_file)
    return CliState(Path(DEFAULT_CONFIG), explicit=False, server=server, ca_file=ca_file)


def operator_actor() -> dict[str, Any]:
    """The audit actor for CLI changes: the operating-system user at this terminal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"type": "operator", "id": user, "via": "cli"}


def check_lifetime(lifetime: timedelta | None, option: str) -> None:
    """A lifetime whose end is a date (`now + 100000000d` is past the year 9999)."""
    try:
        _ = datetime.now(UTC) + lifetime if lifetime is not None else None
    except OverflowError:
        raise typer.BadParameter(MOMENT_OUT_OF_RANGE, param_hint=option) from None


def password_from_stdin() -> str:
    """The first line of stdin without its line ending (``\\n`` or ``\\r\\n``, as a file
    written on Windows ends); a `BastionError` when stdin is closed or holds no password,
    rather than a policy message about an empty password or an empty one sent to a server."""
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise BastionError("--password-stdin found no password: give it as one line on stdin")
    return password


def prompt_password(*, confirm: bool) -> str:
    """Ask at the terminal, without echo; a `BastionError` when stdin is not one (a script
    or a pipe), where the password would otherwise be read back in the clear, or never."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise BastionError(
            "cannot ask for a password: stdin is not a terminal (use --password-stdin)"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))
