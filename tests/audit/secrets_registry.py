"""Every password, key, token and secret the audit tests create, and the scan that proves
none of them reached a database, WAL, audit file, rotated archive, spool or export."""

from __future__ import annotations

import gzip
import threading
import zlib
from pathlib import Path

# Files that legitimately hold a secret: the key material itself, and the configuration.
_KEY_FILES = {"pepper", "bastion.pepper", "audit-signing.pem", "bastion.yaml"}
_SKIP_SUFFIXES = (".pem", ".key", ".crt", ".py", ".conf", ".mjs")


class SecretRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, *secrets: str) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if len(s) >= 8)

    def secrets(self) -> set[str]:
        with self._lock:
            return set(self._secrets)

    def assert_absent_under(self, root: Path) -> None:
        needles = [s.encode() for s in self.secrets()]
        if not needles or not root.exists():
            return
        found: list[str] = []
        for path in root.rglob("*"):
            if not path.is_file() or path.name in _KEY_FILES or path.suffix in _SKIP_SUFFIXES:
                continue
            data = _contents(path)
            found += [f"{path}: {n[:10].decode()}…" for n in needles if n in data]
        assert not found, "secrets left behind:\n" + "\n".join(found)


def _contents(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            # damaged or truncated on purpose: scan what it still yields, and the raw bytes
            return _partial_gunzip(data) + data
    return data


def _partial_gunzip(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(wbits=31).decompress(data)
    except zlib.error:
        return b""


REGISTRY = SecretRegistry()
