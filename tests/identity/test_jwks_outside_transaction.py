"""An external issuer's JWKS is fetched while no database transaction is open: the JWKS server
below takes SQLite's write lock without waiting each time it is asked, which it could not do
while bastion's unit of work (BEGIN IMMEDIATE) held it."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.services.external_jwt import ExternalJwtVerifier
from bastion.services.token_verifier import JwtBearerVerifier
from tests.identity.conftest import FrozenClock, World, make_world

ISSUER = "https://idp.example.test"


class LockProbingJwks:
    """Serves a JWKS; on every fetch, first tries to take the database's write lock at once."""

    def __init__(self, database: Path, keys: list[dict[str, Any]]) -> None:
        self.database = database
        self.keys = keys
        self.probes: list[str] = []
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                probe.probes.append(probe.try_write_lock())
                body = json.dumps({"keys": probe.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    def try_write_lock(self) -> str:
        connection = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return "free"
        except sqlite3.OperationalError as exc:
            return f"held: {exc}"
        finally:
            connection.close()


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(tmp_path: Path, idp_key: rsa.RSAPrivateKey) -> Iterator[LockProbingJwks]:
    server = LockProbingJwks(tmp_path / "bastion.db", [_jwk(idp_key, "idp-1")])
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def jwt_world(tmp_path: Path, jwks: LockProbingJwks) -> Iterator[World]:
    extra = (
        "  authentication:\n    jwt:\n      enabled: true\n"
        f"      issuer: {ISSUER}\n      audience: bastion\n      jwksUri: {jwks.uri}\n"
    )
    built = make_world(f"sqlite:///{jwks.database}", clock=FrozenClock(), extra=extra)
    yield built
    built.services.identity.close()
    built.services.storage.close()


def _token(world: World, key: rsa.RSAPrivateKey, kid: str) -> str:
    now = int(world.clock.now().timestamp())
    claims = {"iss": ISSUER, "aud": "bastion", "sub": "pat@example.com", "iat": now}
    return jwt.encode({**claims, "exp": now + 300}, key, algorithm="RS256", headers={"kid": kid})


def test_jwks_refetch_on_unknown_kid_runs_with_no_transaction_open(
    jwt_world: World, jwks: LockProbingJwks, idp_key: rsa.RSAPrivateKey
) -> None:
    access = jwt_world.services.access
    caller = access.identify(_token(jwt_world, idp_key, "idp-1"))
    assert caller.identity.principal.name == "pat@example.com"
    assert jwks.probes == ["free"]

    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.keys = [_jwk(idp_key, "idp-1"), _jwk(rotated, "idp-2")]
    # The issuer rotated; once the refetch cooldown has passed (the last fetch moved an hour
    # back), a token naming the new kid makes the verifier fetch again.
    _external_verifier(jwt_world)._fetched_at -= 3600
    caller = access.identify(_token(jwt_world, rotated, "idp-2"))
    assert caller.identity.principal.name == "pat@example.com"
    assert jwks.probes == ["free", "free"]


def _external_verifier(world: World) -> Any:
    bearer = next(v for v in world.identity.verifiers if isinstance(v, JwtBearerVerifier))
    verifier = bearer._by_issuer[ISSUER]
    assert isinstance(verifier, ExternalJwtVerifier)
    return verifier
