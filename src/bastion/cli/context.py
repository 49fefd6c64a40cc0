"""What every command shares: the configuration path, loading it, and the operator identity."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from bastion.config import BastionConfig, load_config
from bastion.wiring import Services, build_services

DEFAULT_CONFIG = "bastion.yaml"


@dataclass
class CliState:
    config_path: Path
    explicit: bool

    def load(self) -> BastionConfig:
        """The configuration; defaults when no file exists at the default path."""
        if not self.config_path.exists():
            if self.explicit:
                raise typer.BadParameter(
                    f"{self.config_path} does not exist", param_hint="--config"
                )
            return load_config(None)
        return load_config(self.config_path)

    def services(self) -> Services:
        return build_services(self.load())


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def resolve_config_path(option: Path | None) -> CliState:
    if option is not None:
        return CliState(option, explicit=True)
    env = os.environ.get("BASTION_CONFIG")
    if env:
        return CliState(Path(env), explicit=True)
    return CliState(Path(DEFAULT_CONFIG), explicit=False)


def operator_actor() -> dict[str, Any]:
    """The audit actor for CLI changes: the operating-system user at this terminal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"type": "operator", "id": user, "via": "cli"}
