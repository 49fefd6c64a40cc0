"""Fetching a JSON Web Key Set over HTTP(S) for the external-JWT verifier (stdlib urllib)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from bastion.errors import StorageError

MAX_JWKS_BYTES = 256 * 1024


class HttpJwksFetcher:
    """GET a JWKS document; `StorageError` for any failure (the caller then denies)."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self._timeout = timeout

    def fetch(self, uri: str) -> dict[str, Any]:
        if not uri.startswith(("https://", "http://")):
            raise StorageError("fetch JWKS: only http(s) URLs are fetched")
        request = urllib.request.Request(uri, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = response.read(MAX_JWKS_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StorageError(f"fetch JWKS failed ({exc.__class__.__name__})") from None
        if len(body) > MAX_JWKS_BYTES:
            raise StorageError("fetch JWKS: the document is too large")
        try:
            document = json.loads(body)
        except ValueError:
            raise StorageError("fetch JWKS: the document is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise StorageError("fetch JWKS: the document has no keys")
        return document
