"""Identity benchmarks, each printed next to its baseline measured in the same run.

    python bench/identity/run.py [--quick]

1. API-key authentication, hot path (checksum, keyed hash, cached look-up) against a bare
   ``hmac`` + ``dict`` look-up. Target: p99 <= 5 us. Also printed: the same call when the
   revocation epoch is read in a database unit of work (no Redis listener), and what the
   gateway does per request instead for a key it has seen: the remembered caller, checked
   against the change counters read with one autocommit SELECT on SQLite.
   1b. Callers decided afresh (empty caches, as after a revocation) by 8 threads beside a
   writer that holds SQLite's write lock 5 ms at a time: bastion's read-only units of work
   against a unit that writes per caller (what an issuer that provisions users gets).
   Printed, not a target.
2. Verifying a token bastion issued (RS256): the first verification (signature, claims,
   revocation and principal checks on an in-memory store) against the raw PyJWT decode and
   the raw ``cryptography`` RSA verify of the same token; target <= 1.2x the raw library call.
   A repeated token through the verified-token cache; target p99 <= 5 us.
3. Argon2id (m=19 MiB, t=2, p=1): hash time and logins per second per core.
4. Forward-auth p99 under a login storm next to the p99 without one (bench/identity/storm.py,
   real processes; target <= 2x).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.identity.common import compare, pct, row, sample

from bastion.backends.memory import MemoryStorage
from bastion.config import parse_config
from bastion.core.routes import PathSet, RouteTable
from bastion.crypto.jwt import split_compact
from bastion.crypto.passwords import PasswordHasher
from bastion.services.access import AccessService, RequestFacts
from bastion.services.authn import Authenticated, Authenticator
from bastion.services.bootstrap import initialise
from bastion.wiring import build_services

ACTOR = {"type": "operator", "id": "bench"}


def replica(url: str, storage: object | None = None):  # type: ignore[no-untyped-def]
    """The services of one bastion process on ``url`` (its caches empty)."""
    config = parse_config(f"storage:\n  url: {url}\nsecurity:\n  pepper: {'b' * 40}\n", environ={})
    built = build_services(config, storage=storage)  # type: ignore[arg-type]
    built.storage.migrate()
    return built


def services(url: str = "sqlite:///unused.db", storage: object | None = None):  # type: ignore[no-untyped-def]
    built = replica(url, storage)
    boot = initialise(
        storage=built.storage,
        api_keys=built.api_keys,
        clock=built.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor=ACTOR,
    )
    return built, boot


def bench_api_keys(calls: int, tmp: Path) -> None:
    print("1. API-key authentication, hot path")
    built, boot = services(storage=MemoryStorage())
    secret = boot.admin_key.secret
    state = built.identity.revoker.state
    state.listening(True)  # as with a healthy Redis listener: the epoch is fresh in memory
    with built.storage.transaction() as tx:
        built.api_keys.verify(tx, secret)  # fills the cache
        state.sync(tx)
        state._last_read = float("inf")  # keep it fresh for the whole run (no DB backstop)
        ours = sample(lambda: built.api_keys.verify(tx, secret), calls=calls)
    pepper = b"b" * 40
    table = {hmac.digest(pepper, secret.encode(), hashlib.sha256): "principal"}
    baseline = sample(
        lambda: table.get(hmac.digest(pepper, secret.encode(), hashlib.sha256)), calls=calls
    )
    print(row("bare hmac-sha256 (one-shot) + dict (baseline)", baseline))
    print(row("bastion ApiKeyService.verify, cached", ours))
    print(compare("bastion vs baseline", ours, baseline, budget="budget: p99 <= 5 us absolute"))
    print(f"  -> p99 {pct(ours, 99):.2f} us: {'within' if pct(ours, 99) <= 5 else 'OVER'} 5 us")
    sql, sql_boot = services(url=f"sqlite:///{tmp / 'bench.db'}")
    with sql.storage.transaction() as tx:
        sql.api_keys.verify(tx, sql_boot.admin_key.secret)
        with_db = sample(
            lambda: sql.api_keys.verify(tx, sql_boot.admin_key.secret), calls=calls // 10
        )
    print(row("same, epoch read in a SQLite unit of work (no Redis)", with_db))
    # What the gateway does per request for a key it has seen: the remembered caller, valid
    # while the change counters (one autocommit SELECT on SQLite) have not moved.
    facts = RequestFacts("GET", "/", sql_boot.admin_key.secret, "127.0.0.1", None, "req_bench")
    sql.access.check(facts)
    assert sql.access.check_cached(facts) is not None, "the caller was not remembered"
    remembered = sample(lambda: sql.access.check_cached(facts), calls=calls // 10)
    print(row("gateway: remembered caller + SQLite counters", remembered))


class WritingKeys:
    """API keys verified as a verifier that writes would be (an external issuer that
    provisions users): every caller identified in a unit of work that takes the write lock."""

    def __init__(self, keys: Any) -> None:
        self._keys = keys

    def accepts(self, presented: str) -> bool:
        return bool(self._keys.accepts(presented))

    def verify(self, tx: Any, presented: str) -> Authenticated:
        return self._keys.verify(tx, presented)  # type: ignore[no-any-return]

    def settle(self) -> None:
        self._keys.settle()


def bench_afresh(tmp: Path, callers: int) -> None:
    """Callers decided afresh (a replica with empty caches, as after a revocation) by 8
    threads while another connection commits small writes back to back, each holding SQLite's
    write lock for 5 ms (as the audit writer's batches do). With a unit that writes per
    caller, whoever wins the lock runs alone (a low median) while the rest queue (the tail);
    read-only units share the CPU and never queue."""
    url = f"sqlite:///{tmp / 'afresh.db'}"
    first, _ = services(url=url)
    secrets = [
        first.api_keys.create(
            tenant_name="default",
            owner_name=None,
            name=f"caller-{n}",
            scopes=["patterns:read"],
            expires_at=None,
            actor=ACTOR,
        ).secret
        for n in range(callers)
    ]
    for secret in secrets:
        first.access.identify(secret)  # last-used times current: nothing left to write
    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(tmp / "afresh.db", timeout=30, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS bench_noise (n INTEGER)")
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_noise VALUES (1)")
            time.sleep(0.005)
            conn.execute("COMMIT")
            time.sleep(0.001)
        conn.close()

    def identify_all(access: Any) -> tuple[float, list[float]]:
        latencies: list[float] = []

        def one(secret: str) -> None:
            started = time.perf_counter()
            access.identify(secret)
            latencies.append((time.perf_counter() - started) * 1e6)

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, secrets))
        return time.perf_counter() - started, latencies

    noise = threading.Thread(target=writer, daemon=True)
    noise.start()
    try:
        for _ in range(2):
            fresh = replica(url)
            writing = AccessService(
                storage=fresh.storage,
                authenticator=Authenticator([WritingKeys(fresh.api_keys)]),
                authorizer=fresh.authorizer,
                routes=RouteTable([]),
                public_paths=PathSet([]),
                clock=fresh.clock,
            )
            measured = {
                label: identify_all(access)
                for label, access in (
                    ("writing unit per caller (baseline)", writing),
                    ("bastion, read-only units", replica(url).access),
                )
            }
            for label, (_, latencies) in measured.items():
                print(row(label, latencies))
            (base_total, base), (ours_total, ours) = measured.values()
            print(
                f"  -> {callers} callers in {ours_total * 1000:,.0f} ms against "
                f"{base_total * 1000:,.0f} ms; p99 ratio {pct(ours, 99) / pct(base, 99):.2f}x "
                "the baseline (not a target)"
            )
    finally:
        stop.set()
        noise.join()


def bench_tokens(calls: int) -> None:
    print("2. Verifying a token bastion issued (RS256)")
    built, _ = services(storage=MemoryStorage())
    identity = built.identity
    identity.tokens.warm()
    with built.storage.transaction() as tx:
        admin = tx.principals.get_by_name(tx.tenants.get_by_name("default").id, "admin@example.com")
        tenant = tx.tenants.get_by_name("default")
    now = datetime.now(UTC)
    tokens = [
        identity.tokens.access_token(
            Authenticated(admin, "bench", "bench", ("patterns:read",)), tenant=tenant, now=now
        )[0]
        for _ in range(min(calls, 2000))
    ]
    header, _ = split_compact(tokens[0])
    jwk = next(k for k in identity.signing_keys.jwks()["keys"] if k["kid"] == header["kid"])
    public = jwt.PyJWK(jwk).key
    issuer = identity.issuer
    verifier = identity.issued_tokens
    iterator = iter(tokens * 3)

    count = len(tokens)
    # Inside one open unit of work, as a request has: the store checks are memory look-ups.
    with built.storage.transaction() as tx:

        def first_time() -> None:
            verifier._cache.clear()
            verifier.verify(tx, next(iterator))

        ours = sample(first_time, calls=count, warmup=100)
    raw_pyjwt = sample(
        lambda: jwt.decode(tokens[0], public, algorithms=["RS256"], audience=issuer),
        calls=count,
        warmup=100,
    )
    head, body, signature = tokens[0].split(".")
    signed = f"{head}.{body}".encode()
    raw_sig = jwt.utils.base64url_decode(signature)
    raw_crypto = sample(
        lambda: public.verify(raw_sig, signed, padding.PKCS1v15(), hashes.SHA256()),
        calls=count,
        warmup=100,
    )
    print(row("raw cryptography RSA verify (baseline)", raw_crypto))
    print(row("raw PyJWT jwt.decode (baseline)", raw_pyjwt))
    print(row("bastion first verification (+ store checks)", ours))
    print(compare("first vs raw PyJWT", ours, raw_pyjwt, budget="target <= 1.2x"))
    with built.storage.transaction() as tx:
        verifier.verify(tx, tokens[0])
        state = identity.revoker.state
        state.listening(True)
        state._last_read = float("inf")
        cached = sample(lambda: verifier.verify(tx, tokens[0]), calls=calls)
    print(row("bastion repeated token (verified-token cache)", cached))
    verdict = "within" if pct(cached, 99) <= 5 else "OVER"
    print(f"  -> cached p99 {pct(cached, 99):.2f} us: {verdict} 5 us")


def bench_argon2(rounds: int) -> None:
    print("3. Argon2id m=19 MiB, t=2, p=1")
    hasher = PasswordHasher()
    started = time.perf_counter()
    stored = [hasher.hash("Correct-Horse-9-Battery") for _ in range(rounds)]
    hash_ms = (time.perf_counter() - started) / rounds * 1000
    started = time.perf_counter()
    for value in stored:
        hasher.verify(value, "Correct-Horse-9-Battery")
    verify_s = (time.perf_counter() - started) / rounds
    print(f"  hash: {hash_ms:.1f} ms each; verify: {verify_s * 1000:.1f} ms each")
    print(f"  -> {1 / verify_s:.0f} logins/s per core (cores here: {os.cpu_count()})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls = 20_000 if args.quick else 200_000
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bastion-bench-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    bench_api_keys(calls, tmp)
    print("1b. Callers decided afresh (empty caches), 8 threads, beside a busy writer")
    bench_afresh(tmp, 100 if args.quick else 400)
    bench_tokens(calls)
    bench_argon2(5 if args.quick else 20)
    print("4. Login storm: run bench/identity/storm.py (starts real processes)")
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
