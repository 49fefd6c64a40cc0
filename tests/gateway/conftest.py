"""An in-process gateway (starlette's TestClient runs the lifespan) on SQLite, with an upstream
address where nothing listens: a request that gets past every check answers 502."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from bastion.config import parse_config
from bastion.core.model import AuditEvent, AuditQuery
from bastion.gateway.app import build_app
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services
from tests.e2e.procs import free_port

ROUTES = [
    {"method": "GET", "path": "/api/patterns", "resource": "patterns", "action": "read"},
    {"method": "POST", "path": "/api/patterns", "resource": "patterns", "action": "create"},
    {"method": "GET", "path": "/admin/**", "resource": "admin", "action": "manage"},
]


class Gateway:
    def __init__(self, client: TestClient, services: Services, admin_key: str) -> None:
        self.client = client
        self.services = services
        self.admin_key = admin_key

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def tenant_admin_key(self, tenant: str = "acme", admin: str = "root@acme.example") -> str:
        """The admin key of a new tenant: another principal, in another tenant."""
        return initialise(
            storage=self.services.storage,
            api_keys=self.services.api_keys,
            clock=self.services.clock,
            tenant_name=tenant,
            admin_name=admin,
            actor={"type": "operator", "id": "tester"},
        ).admin_key.secret

    def events(self) -> list[AuditEvent]:
        with self.services.storage.transaction() as tx:
            return tx.audit.query(AuditQuery(limit=10_000))


GatewayFactory = Callable[..., Any]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    opened: list[TestClient] = []

    @contextmanager
    def make(
        extra: dict[str, Any] | None = None, client_ip: str = "127.0.0.1"
    ) -> Iterator[Gateway]:
        document: dict[str, Any] = {
            "storage": {"url": f"sqlite:///{tmp_path}/b.db"},
            "gateway": {
                "upstream": f"http://127.0.0.1:{free_port()}",
                "routes": ROUTES,
                "publicPaths": ["/public/**"],
            },
            "security": {"pepper": "p" * 40},
        }
        for section, values in (extra or {}).items():
            document[section] = {**document.get(section, {}), **values}
        config = parse_config(yaml.safe_dump(document), source="test")
        services = build_services(config)
        services.storage.migrate()
        done = initialise(
            storage=services.storage,
            api_keys=services.api_keys,
            clock=services.clock,
            tenant_name="default",
            admin_name="admin@example.com",
            actor={"type": "operator", "id": "tester"},
        )
        app = build_app(config, services=services)
        with TestClient(app, client=(client_ip, 50000)) as client:
            opened.append(client)
            yield Gateway(client, services, done.admin_key.secret)

    yield make
