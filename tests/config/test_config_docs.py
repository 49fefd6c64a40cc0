"""docs/configuration.md stays true: its complete example loads and its enforcement marks match."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import bastion.config
from bastion.config import ENFORCED, config_key_paths, load_config, not_yet_enforced

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def complete_example() -> str:
    text = DOC.read_text()
    section = text.split("## Complete example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match[1]


def test_complete_example_loads(tmp_path: Path) -> None:
    (tmp_path / "bastion.yaml").write_text(complete_example())
    (tmp_path / "bastion.pepper").write_text("p" * 43 + "\n")
    (tmp_path / "session.secret").write_text("s" * 43 + "\n")
    environ = {
        "OIDC_CLIENT_ID": "bastion",
        "OIDC_CLIENT_SECRET": "oidc-secret",
        "DB_PASSWORD": "db-password",
        "SPLUNK_HEC_TOKEN": "hec-token",
    }
    config = load_config(tmp_path / "bastion.yaml", environ=environ)
    assert not_yet_enforced(config) == [
        "security.sso",
        "security.encryption",
        "security.secrets",
        "security.sessions",
        "security.gdpr",
        "security.hipaa",
    ]


@functools.cache
def documented_status() -> dict[str, bool]:
    """Key path → whether its table row says "(not yet enforced)"."""
    status: dict[str, bool] = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\| `([^`]+)` \|", line)
        if match:
            status[match[1]] = "(not yet enforced)" not in line
    return status


def is_enforced(path: str) -> bool:
    plain = path.replace("[]", "")
    return any(plain == e or plain.startswith(f"{e}.") for e in ENFORCED)


@pytest.mark.parametrize("path", config_key_paths())
def test_leaf_keys_are_marked_as_enforcement_says(path: str) -> None:
    status = documented_status()
    assert path in status, f"{path} has no row in docs/configuration.md"
    is_section = any(other.startswith(f"{path}.") for other in config_key_paths())
    if not is_section:
        assert status[path] == is_enforced(path)


def test_public_api_is_exported() -> None:
    for name in bastion.config.__all__:
        assert hasattr(bastion.config, name), name
