"""A running admin API on SQLite with two initialised tenants, for the authz API tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient

from bastion.config import parse_config
from bastion.gateway.app import build_app
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services

API = "/_bastion/api/v1"
ACTOR = {"type": "operator", "id": "tester"}


@dataclass
class ApiWorld:
    services: Services
    client: TestClient
    keys: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@contextmanager
def api_world(
    tmp_path: Path, extra: str = "", *, tenants: Sequence[str] = ("default", "beta")
) -> Iterator[ApiWorld]:
    """The API with ``tenants`` initialised (each with admin@example.com), keyed as written."""
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\nsecurity:\n  pepper: {'p' * 40}\n{extra}",
        source="test",
        environ={},
        base_dir=tmp_path,
    )
    services = build_services(config)
    services.storage.migrate()
    keys = {}
    for tenant in tenants:
        done = initialise(
            storage=services.storage,
            api_keys=services.api_keys,
            clock=services.clock,
            tenant_name=tenant,
            admin_name="admin@example.com",
            actor=ACTOR,
        )
        keys[tenant] = done.admin_key.secret
    with TestClient(build_app(config, services=services)) as client:
        yield ApiWorld(services, client, keys)
