"""Gateway benchmark: wrk on loopback, every comparison measured side by side in one run.

    python bench/gateway/run.py [--duration 8] [--connections 50] [--rounds 2]
                                [--paced-rate 500] [--paced-rounds 4] [--paced-seconds 3]

1. Reverse proxy: bastion (API key + RBAC + audit on SQLite) against a bare pass-through proxy on
   the same server and client libraries (uvicorn + aiohttp), both in front of the same upstream
   (nginx answering 200). Target: >= 90% of the throughput, <= +0.5 ms median latency.
   Two more bastion rows show where the cost goes: a public path (no key look-up, no RBAC, audit
   still on) and the full path with the audit trail off.
2. Forward-auth: nginx + auth_request → bastion /_bastion/verify against nginx + auth_request →
   a minimal endpoint on the same server stack (uvicorn). Target: >= 80%.
3. nginx's own plain proxy beside them, as the ceiling.
4. Added latency at a fixed load: bastion's proxy (with the audit trail, and without it to
   show the durable commit's share) and the bare pass-through at the same fixed rate (default
   500 requests/s, well below either's saturation), in alternating windows, with
   latencies counted from each request's scheduled send time (bench/paced.py). Target: added
   p50 <= 0.5 ms. (wrk's closed-loop p50 at saturation is printed too, but there it is only
   the throughput restated: connections / requests per second.) Beside it, the floor of a
   durable audit record on this disk: a one-row transaction by the sqlite3 driver alone into
   a copy of bastion's database (the same table and indexes, WAL, synchronous=FULL), at about
   the same spacing.

Each row also shows the CPU time per request of the Python server that answered it (bastion
with its audit writer process, or the baseline) and of nginx, read from /proc over the wrk run:
they say where a gap in throughput comes from, and on a shared machine they move less from run
to run than req/s (a slower machine still raises both sides).

Everything listens on 127.0.0.1 and is stopped by PID at the end; each wrk run is bounded by
--duration. Needs nginx and wrk (Debian: apt-get install nginx wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from stack import cpu_seconds, environment  # bench/gateway/stack.py, beside this file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.identity.common import pct
from bench.paced import get_request, paced_latencies

KEY_HEADER = "Authorization: Bearer {key}"
PROXY = "bastion proxy (key + RBAC + audit)"
BARE = "bare uvicorn+aiohttp pass-through"
VERIFY = "nginx -> bastion /verify"
MINIMAL = "nginx -> minimal uvicorn endpoint"
CEILING = "nginx plain proxy (ceiling)"
NO_AUDIT = "bastion proxy, key + RBAC, audit off"


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU per request, from /proc over the wrk run: the Python server's (with its children:
    # bastion's audit writer) and nginx's. They say where a gap in req/s comes from.
    server_us: float = 0.0
    nginx_us: float = 0.0


def parse_latency(value: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    name: str,
    url: str,
    *,
    duration: int,
    connections: int,
    header: str | None,
    server: int | None = None,
    nginx: int | None = None,
) -> Result:
    """One wrk run; with ``server`` / ``nginx`` PIDs, also their CPU per request."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if header:
        args[1:1] = ["-H", header]
    pids = [pid for pid in (server, nginx) if pid is not None]
    before = {pid: cpu_seconds(pid) for pid in pids}
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60).stdout
    spent = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_latency(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = parse_latency(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    per_request = {pid: seconds / max(requests, 1) * 1e6 for pid, seconds in spent.items()}
    server_us = per_request.get(server, 0.0) if server is not None else 0.0
    nginx_us = per_request.get(nginx, 0.0) if nginx is not None else 0.0
    return Result(name, rps, p50, p99, errors, server_us, nginx_us)


Measured = tuple[list[tuple[str, list[Result]]], dict[str, list[float]], list[float]]


def measure(args: argparse.Namespace, workdir: Path) -> Measured:
    """The wrk rows (every round of each path), then the fixed-rate latencies."""
    with environment(workdir) as (ports, key, pids):
        noaudit_key = subprocess.run(
            [
                sys.executable,
                "-m",
                "bastion",
                "auth",
                "create-key",
                "--name",
                "bench2",
                "--scopes",
                "patterns:read",
            ],
            cwd=workdir / "bastion-noaudit",
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        auth = KEY_HEADER.format(key=key)
        base, off = f"http://127.0.0.1:{ports.bastion}", f"http://127.0.0.1:{ports.bastion_noaudit}"
        # Each path: URL, header, and the Python server that answers it (None: nginx alone).
        targets = {
            PROXY: (base + "/bench", auth, "bastion"),
            BARE: (f"http://127.0.0.1:{ports.passthrough}/bench", auth, "passthrough"),
            "bastion proxy, public path, audit on": (base + "/public", None, "bastion"),
            "bastion proxy, public path, audit off": (off + "/public", None, "bastion-noaudit"),
            NO_AUDIT: (
                off + "/bench",
                KEY_HEADER.format(key=noaudit_key),
                "bastion-noaudit",
            ),
            VERIFY: (f"http://127.0.0.1:{ports.auth_bastion}/bench", auth, "bastion"),
            MINIMAL: (f"http://127.0.0.1:{ports.auth_minimal}/bench", auth, "minimal"),
            CEILING: (f"http://127.0.0.1:{ports.plain}/bench", None, None),
        }
        paired = [PROXY, BARE, VERIFY, MINIMAL]
        results: dict[str, list[Result]] = {name: [] for name in targets}
        for name, (url, header, _) in targets.items():  # warm up every path once
            wrk(name, url, duration=2, connections=args.connections, header=header)
        for round_ in range(args.rounds):
            for name in targets if round_ == 0 else paired:
                url, header, server = targets[name]
                results[name].append(
                    wrk(
                        name,
                        url,
                        duration=args.duration,
                        connections=args.connections,
                        header=header,
                        server=pids[server] if server else None,
                        nginx=pids["nginx"],
                    )
                )
                print(
                    f"  round {round_ + 1}: {name}: {results[name][-1].rps:,.0f} req/s",
                    file=sys.stderr,
                )
        request = get_request("/bench", {"Authorization": f"Bearer {key}"})
        paced = {
            PROXY: (ports.bastion, request),
            BARE: (ports.passthrough, request),
            NO_AUDIT: (
                ports.bastion_noaudit,
                get_request("/bench", {"Authorization": f"Bearer {noaudit_key}"}),
            ),
        }
        latencies = paced_section(args, paced)
    return list(results.items()), latencies, commit_floor(workdir / "bastion" / "bastion.db")


def commit_floor(database: Path, *, count: int = 500, spacing: float = 0.002) -> list[float]:
    """Wall times (µs) of durable one-row transactions by the sqlite3 driver alone (BEGIN
    IMMEDIATE, read the head, insert, COMMIT; WAL, synchronous=FULL) into a copy of
    ``database``, whose audit table the proxy rows filled: the same schema and indexes on the
    same disk. The least any per-request durable record costs here, without bastion."""
    floor = database.with_name("floor.db")
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(floor)) as copy:
        source.backup(copy)
    conn = sqlite3.connect(floor, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        head = "SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1"
        row = list(conn.execute(head).fetchone())
        columns = ", ".join("?" for _ in row)
        insert = f"INSERT INTO audit_events VALUES ({columns})"  # noqa: S608 - no input
        walls = []
        for _ in range(count):
            time.sleep(spacing)
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            seq = conn.execute(head).fetchone()[0] + 1
            row[0], row[1] = seq, f"evt_floor{seq:027d}"
            conn.execute(insert, row)
            conn.execute("COMMIT")
            walls.append((time.perf_counter() - started) * 1e6)
        return walls
    finally:
        conn.close()


def paced_section(
    args: argparse.Namespace, targets: dict[str, tuple[int, bytes]]
) -> dict[str, list[float]]:
    """Latencies (µs) of each target at the same fixed rate, in alternating windows."""
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    window = {"rate": args.paced_rate, "streams": 10}
    for port, request in targets.values():  # warm up
        asyncio.run(paced_latencies(port, request, seconds=1, **window))
    for round_ in range(args.paced_rounds):
        order = list(targets) if round_ % 2 == 0 else list(targets)[::-1]
        for name in order:
            port, request = targets[name]
            measured = paced_latencies(port, request, seconds=args.paced_seconds, **window)
            latencies[name] += asyncio.run(measured)
    return latencies


def median(results: list[Result]) -> Result:
    return Result(
        results[0].name,
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.server_us for r in results),
        statistics.median(r.nginx_us for r in results),
    )


def report(measured: Measured, args: argparse.Namespace) -> None:
    saturated, paced, floor = measured
    rows = {name: median(results) for name, results in saturated}
    print(
        f"\nbastion gateway benchmark: wrk -t1 -c{args.connections} -d{args.duration}s, "
        f"loopback, {os.cpu_count()} cores, median of {args.rounds} rounds for the paired rows\n"
    )
    print(
        f"{'path':<42} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'server CPU us/req':>18} {'nginx CPU us/req':>17}"
    )
    for name, row in rows.items():
        server = f"{row.server_us:,.0f}" if row.server_us else "-"
        print(
            f"{name:<42} {row.rps:>10,.0f} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {row.errors:>7}"
            f" {server:>18} {row.nginx_us:>17,.0f}"
        )
    proxy, bare = rows[PROXY], rows[BARE]
    verify, minimal = rows[VERIFY], rows[MINIMAL]
    print()
    ratio = proxy.rps / bare.rps
    added = proxy.p50_ms - bare.p50_ms
    print(
        f"proxy mode: bastion / bare = {proxy.rps:,.0f} / {bare.rps:,.0f} = {ratio:.2f} "
        f"(target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}); "
        f"p50 at saturation {proxy.p50_ms:.2f} vs {bare.p50_ms:.2f} ms ({added:+.2f} ms: "
        "throughput restated, see below)"
    )
    print(
        f"\nat a fixed {args.paced_rate:,} req/s ({args.paced_rounds} alternating windows of"
        f" {args.paced_seconds} s each, latency from each request's scheduled send time):"
    )
    for name, latencies in paced.items():
        print(
            f"  {name:<42} p50 {pct(latencies, 50) / 1000:6.2f} ms  p99"
            f" {pct(latencies, 99) / 1000:7.2f} ms  ({len(latencies):,} requests)"
        )
    added_paced = (pct(paced[PROXY], 50) - pct(paced[BARE], 50)) / 1000
    print(
        f"proxy mode at a fixed load: added p50 {added_paced:+.2f} ms"
        f" (target <= +0.50 ms: {'met' if added_paced <= 0.5 else 'NOT met'})"
    )
    audit_share = (pct(paced[PROXY], 50) - pct(paced[NO_AUDIT], 50)) / 1000
    print(
        f"  the audit trail's share of that: {audit_share:+.2f} ms (with it - without it); the"
        f" floor of a durable record on this disk (sqlite3 alone, one row, {len(floor)}"
        f" transactions): p50 {pct(floor, 50) / 1000:.2f} ms, p99 {pct(floor, 99) / 1000:.2f} ms"
    )
    ratio = verify.rps / minimal.rps
    print(
        f"forward-auth: nginx->bastion / nginx->minimal = {verify.rps:,.0f} / {minimal.rps:,.0f} = "
        f"{ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})"
    )
    print(
        f"CPU per request (not a target): proxy bastion {proxy.server_us:,.0f} us "
        f"vs bare {bare.server_us:,.0f} us = {proxy.server_us / max(bare.server_us, 1):.2f}x; "
        f"forward-auth bastion {verify.server_us:,.0f} us vs minimal {minimal.server_us:,.0f} us "
        f"= {verify.server_us / max(minimal.server_us, 1):.2f}x"
    )
    ceiling = rows[CEILING]
    print(
        f"ceiling: nginx plain proxy {ceiling.rps:,.0f} req/s; bastion proxy is "
        f"{proxy.rps / ceiling.rps:.2f} of it, forward-auth {verify.rps / ceiling.rps:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paced-rate", type=int, default=500, help="requests/s, fixed-load rows")
    parser.add_argument("--paced-rounds", type=int, default=4)
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (apt-get install nginx wrk)")
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as scratch:
        workdir = Path(scratch)
        workdir.chmod(0o755)
        report(measure(args, workdir), args)


if __name__ == "__main__":
    main()
