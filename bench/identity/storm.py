"""Forward-auth p99 while a login storm runs, next to the p99 without one (real processes).

    python bench/identity/storm.py [--rounds 6] [--seconds 2] [--rate 400] [--streams 8]
                                     [--logins 16]

Starts `bastion serve` on SQLite (loopback only), then measures ``GET /_bastion/verify`` with
an API key at a fixed rate in alternating windows: alone, then while clients in a second
process post wrong passwords to ``/_bastion/login`` as fast as they can. The storm process is
paused (SIGSTOP) and resumed (SIGCONT) between windows, and the windows alternate for
``--rounds`` rounds, so that a noisy neighbour on a shared machine lands on both sides alike
instead of on whichever side it happened to coincide with. The measuring client
is a light raw HTTP/1.1 one with latencies counted from each request's scheduled time, so
the number is bastion's, not a busy client's queue. Password hashing runs in a bounded pool
off the event loop, so the storm may cost CPU but must not starve request handling.
Target: at most 2x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.identity.common import pct
from bench.paced import get_request, paced_latencies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_bastion(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    (workdir / "pepper").write_text("bench-storm-pepper-" + "s" * 40 + "\n")
    config = {
        "storage": {"url": f"sqlite:///{workdir / 'bastion.db'}"},
        "gateway": {
            "listen": f"127.0.0.1:{port}",
            "trustedProxies": ["127.0.0.1/32"],
            "routes": [
                {"method": "GET", "path": "/api/things", "resource": "things", "action": "read"}
            ],
        },
        "security": {"pepper": "file:pepper", "audit": {"enabled": False}},
    }
    (workdir / "bastion.yaml").write_text(yaml.safe_dump(config))
    bastion = [sys.executable, "-m", "bastion"]
    key = subprocess.run(
        [*bastion, "init"], cwd=workdir, capture_output=True, text=True, check=True
    )
    log = (workdir / "bastion.log").open("wb")
    process = subprocess.Popen(
        [*bastion, "serve", "--log-level", "warning"],
        cwd=workdir,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_bastion/health", timeout=1).status_code == 200:
                return process, key.stdout.strip()
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("bastion did not start")


async def measure(port: int, key: str, *, seconds: float, rate: float, streams: int) -> list[float]:
    """/verify latencies at a fixed total ``rate`` spread over ``streams`` connections."""
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Original-URI": "/api/things",
        "X-Original-Method": "GET",
    }
    request = get_request("/_bastion/verify", headers)
    return await paced_latencies(port, request, seconds=seconds, rate=rate, streams=streams)


async def login_loop(
    client: httpx.AsyncClient, stop: asyncio.Event, counts: list[int], n: int, *, fresh: bool
) -> None:
    """Wrong passwords from client ``n``: always for the same account from this machine's
    address (the locks soon refuse them), or with ``fresh`` for a new account from a new
    address each time (forwarded by the trusted loopback proxy), which no lock stops."""
    attempt = 0
    while not stop.is_set():
        attempt += 1
        username, headers = f"storm-{n}@example.com", {}
        if fresh:
            username = f"storm-{n}-{attempt}@example.com"
            headers["X-Forwarded-For"] = f"10.{n}.{attempt // 250 % 250}.{attempt % 250}"
        body = {"username": username, "password": "wrong-password-1A!"}
        response = await client.post("/_bastion/login", json=body, headers=headers)
        counts.append(response.status_code)


async def storm(base: str, *, seconds: float, logins: int, fresh: bool) -> list[int]:
    """Wrong passwords from ``logins`` clients until SIGTERM or ``seconds`` have passed."""
    statuses: list[int] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(seconds, stop.set)
    limits = httpx.Limits(max_connections=logins + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(login_loop(client, stop, statuses, n, fresh=fresh) for n in range(logins))
        )
    return statuses


def storm_process(base: str, *, seconds: float, logins: int, fresh: bool) -> subprocess.Popen[str]:
    """The login storm in a process of its own, so that its client work never stalls the
    event loop of the client that measures /verify (which would count against bastion)."""
    args = [sys.executable, __file__, "--generate", base, "--seconds", str(seconds)]
    args += ["--logins", str(logins), *(["--fresh"] if fresh else [])]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def steal_seconds() -> float:
    """CPU time the virtual machine's host took from this machine so far (/proc/stat steal);
    0 where it is not reported. A shared machine's stalls land on whichever window they
    coincide with, so the report shows how much each side had."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Windows:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"quiet": [], "stormy": []})
    steal: dict[str, float] = field(default_factory=lambda: {"quiet": 0.0, "stormy": 0.0})
    stormed: float = 0.0
    statuses: list[int] = field(default_factory=list)

    def measure(self, side: str, port: int, key: str, paced: dict[str, float]) -> None:
        stolen = steal_seconds()
        self.latencies[side] += asyncio.run(measure(port, key, **paced))
        self.steal[side] += steal_seconds() - stolen


def alternate(port: int, key: str, args: argparse.Namespace, *, fresh: bool) -> Windows:
    """Storm and quiet windows in turn, the storm process stopped during the quiet ones."""
    paced = {"rate": args.rate, "streams": args.streams, "seconds": args.seconds}
    windows = Windows()
    # The storm process runs for the whole measurement, stopped between storm windows; its
    # own clock keeps running while it is stopped, so give it the whole length.
    total = args.rounds * (2 * args.seconds + 2.5) + 5
    base = f"http://127.0.0.1:{port}"
    stormer = storm_process(base, seconds=total, logins=args.logins, fresh=fresh)
    try:
        time.sleep(1.0)  # the storm is under way
        for _ in range(args.rounds):
            began = time.monotonic()
            windows.measure("stormy", port, key, paced)
            stormer.send_signal(signal.SIGSTOP)
            windows.stormed += time.monotonic() - began
            # Logins already admitted finish within the pool's queue: let them drain.
            time.sleep(1.5)
            windows.measure("quiet", port, key, paced)
            stormer.send_signal(signal.SIGCONT)
            time.sleep(0.5)
    finally:
        stormer.send_signal(signal.SIGCONT)
        stormer.send_signal(signal.SIGTERM)
        out, _ = stormer.communicate(timeout=120)
    windows.statuses = json.loads(out) if out else []
    return windows


STORMS = {
    "locked": "16 clients, each against one account from one address (the locks soon refuse)",
    "fresh": "16 clients, a new account from a new address every attempt (no lock applies)",
}


def report(kind: str, windows: Windows) -> None:
    print(f"  storm '{kind}': {STORMS[kind]}")
    for label, side in (("without storm", "quiet"), ("with storm", "stormy")):
        values = windows.latencies[side]
        p50, p99 = pct(values, 50) / 1000, pct(values, 99) / 1000
        print(
            f"    {label:<14} {len(values):6d} requests  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
            f"  (CPU steal in these windows {windows.steal[side] * 1000:.0f} ms)"
        )
    statuses = windows.statuses
    busy = sum(s == 503 for s in statuses)
    print(
        f"    {len(statuses)} login attempts answered, "
        f"about {len(statuses) / windows.stormed:.0f}/s "
        f"while the storm ran ({busy} refused as busy, 503)"
    )
    ratio = pct(windows.latencies["stormy"], 99) / pct(windows.latencies["quiet"], 99)
    print(f"    -> p99 ratio {ratio:.2f}x (target <= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6, help="quiet/storm window pairs")
    parser.add_argument("--seconds", type=float, default=2, help="length of each window")
    parser.add_argument("--rate", type=float, default=400, help="/verify requests per second")
    parser.add_argument("--streams", type=int, default=8, help="/verify connections")
    parser.add_argument("--logins", type=int, default=16)
    parser.add_argument("--storm", choices=[*STORMS, "both"], default="both")
    parser.add_argument("--generate", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:  # the storm process: print the login statuses it saw
        statuses = storm(args.generate, seconds=args.seconds, logins=args.logins, fresh=args.fresh)
        print(json.dumps(asyncio.run(statuses)))
        return
    kinds = list(STORMS) if args.storm == "both" else [args.storm]
    print(
        "4. Forward-auth (/_bastion/verify, API key) at a fixed "
        f"{args.rate:.0f} requests/s, with and without a login storm "
        f"({args.rounds} alternating windows of {args.seconds:g} s each)"
    )
    for kind in kinds:  # a fresh bastion for each: no locks or counters carried over
        workdir = Path(tempfile.mkdtemp(prefix="bastion-storm-"))
        port = free_port()
        process, key = start_bastion(workdir, port)
        try:
            paced = {"rate": args.rate, "streams": args.streams, "seconds": args.seconds}
            asyncio.run(measure(port, key, **paced))  # warm up
            windows = alternate(port, key, args, fresh=kind == "fresh")
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
            shutil.rmtree(workdir, ignore_errors=True)
        report(kind, windows)


if __name__ == "__main__":
    main()
