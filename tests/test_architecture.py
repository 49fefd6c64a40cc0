"""The layering of DESIGN.md section 8, checked: core is pure, only backends.sql uses SQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bastion


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core is pure" in result.stdout
    assert "only backends.sql imports sqlalchemy" in result.stdout


def test_public_names_exist() -> None:
    for name in bastion.__all__:
        assert hasattr(bastion, name), name
