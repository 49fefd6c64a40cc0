"""No secret anywhere: keys sent in headers, paths and user agents, the pepper and the audit
signing key never appear in the database (WAL included), the audit file, the spool, or any
export format, after a real stack has served them."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from bastion.crypto.checkpoints import generate_signing_key_pem
from bastion.crypto.keys import new_api_key
from tests.audit.secrets_registry import REGISTRY
from tests.e2e.audit_stack import audit_stack

pytestmark = pytest.mark.e2e

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
KEY_FILES = {"pepper", "bastion.yaml", "audit-signing.pem"}


def test_no_secret_reaches_any_file_bastion_writes(tmp_path: Path) -> None:
    key_file = tmp_path / "audit-signing.pem"
    key_file.write_bytes(generate_signing_key_pem())
    key_file.chmod(0o600)
    config = {
        "security": {
            "audit": {
                "destination": ["database", "file"],
                "file": {"path": "audit.log"},
                "signingKey": "file:audit-signing.pem",
            },
            "dataProtection": {"masking": {"fields": ["request.path"]}},
        }
    }
    with audit_stack(tmp_path, config=config) as stack:
        pepper = (stack.workdir / "pepper").read_text().strip()
        unknown = new_api_key()
        extra = stack.cli("auth", "create-key", "--name", "ci", "--scopes", "admin").stdout.strip()
        secrets = [stack.admin_key, stack.limited_key, unknown, extra, pepper, JWT]
        REGISTRY.add(*secrets)
        base = stack.base
        sent = [
            httpx.get(f"{base}/api/patterns", headers={"Authorization": f"Bearer {extra}"}),
            httpx.get(f"{base}/api/patterns", headers={"X-API-Key": stack.limited_key}),
            httpx.get(f"{base}/api/patterns", headers={"Authorization": f"Bearer {unknown}"}),
            httpx.get(
                f"{base}/api/patterns/{stack.admin_key}",
                headers={"Authorization": f"Bearer {stack.admin_key}", "User-Agent": JWT},
            ),
            httpx.get(
                f"{base}/api/patterns?password=hunter2-{pepper}",
                headers={"User-Agent": f"tool/1.0 ({stack.limited_key})"},
            ),
        ]
        assert [r.status_code for r in sent] == [200, 200, 401, 404, 401]
        for fmt in ("json", "ndjson", "csv", "syslog", "cef"):
            stack.cli("audit", "export", "--format", fmt, "-o", str(tmp_path / f"export.{fmt}"))
        listing = stack.cli("audit", "list", "--json", "--limit", "1000").stdout
        status = stack.cli("audit", "status").stdout
    signing_key = (stack.workdir / "audit-signing.pem").read_text().splitlines()[1]
    secrets.append(signing_key)
    REGISTRY.add(signing_key)
    found = []
    for path in tmp_path.rglob("*"):
        if not path.is_file() or path.name in KEY_FILES:
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        found += [f"{path.name}: {s[:10]}…" for s in secrets if s.encode() in data]
    for name, text in (("audit list", listing), ("audit status", status)):
        found += [f"{name}: {s[:10]}…" for s in secrets if s in text]
    assert not found, found
    assert (tmp_path / "bastion.db").exists() and (tmp_path / "audit.log").exists()
