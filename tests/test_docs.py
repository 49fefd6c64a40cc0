"""Documentation stays true: every CLI command and every config key is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from bastion.cli.main import app
from bastion.config import config_key_paths

DOCS = Path(__file__).parents[1] / "docs"


def _command_names() -> list[str]:
    root = typer.main.get_command(app)
    names: list[str] = []

    def walk(command: object, prefix: str) -> None:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            names.append(prefix)
            return
        for name, sub in subcommands.items():
            walk(sub, f"{prefix} {name}")

    walk(root, "bastion")
    return names


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = [name for name in _command_names() if f"`{name}" not in text]
    assert not missing, f"undocumented commands: {missing}"


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [path for path in config_key_paths() if f"`{path}`" not in text]
    assert not missing, f"undocumented config keys: {missing}"
