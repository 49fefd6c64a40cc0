"""Forward-auth p99 while a login storm runs, next to the p99 without one (real processes).

    python bench/identity/storm.py [--seconds 5] [--rate 400] [--streams 8] [--logins 16]

Starts `bastion serve` on SQLite (loopback only), then measures ``GET /_bastion/verify`` with
an API key at a fixed rate for a bounded time, first alone, then while clients in a second
process post wrong passwords to ``/_bastion/login`` as fast as they can. The measuring client
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
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.identity.common import pct


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


async def verify_paced(
    port: int, key: str, *, start: float, interval: float, count: int, out: list[float]
) -> None:
    """``count`` requests on one keep-alive connection, one every ``interval`` seconds from
    ``start``. Latency runs from the scheduled send time, so a stall also counts against the
    requests it delayed (no coordinated omission). Raw HTTP/1.1: the client must stay light
    enough that its own CPU time is not what gets measured."""
    request = (
        "GET /_bastion/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\n"
        "X-Original-URI: /api/things\r\nX-Original-Method: GET\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        for n in range(count):
            scheduled = start + n * interval
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append((loop.time() - scheduled) * 1e6)
            if status != b"200":
                raise SystemExit(f"/verify answered {status.decode()}")
    finally:
        writer.close()


async def measure(port: int, key: str, *, seconds: float, rate: float, streams: int) -> list[float]:
    """/verify latencies at a fixed total ``rate`` spread over ``streams`` connections."""
    latencies: list[float] = []
    interval = streams / rate
    start = asyncio.get_running_loop().time() + 0.05
    count = int(seconds / interval)
    await asyncio.gather(
        *(
            verify_paced(
                port,
                key,
                start=start + i * interval / streams,
                interval=interval,
                count=count,
                out=latencies,
            )
            for i in range(streams)
        )
    )
    return latencies


async def login_loop(client: httpx.AsyncClient, until: float, counts: list[int], n: int) -> None:
    while time.monotonic() < until:
        body = {"username": f"storm-{n}@example.com", "password": "wrong-password-1A!"}
        response = await client.post("/_bastion/login", json=body)
        counts.append(response.status_code)


async def storm(base: str, *, seconds: float, logins: int) -> list[int]:
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=logins + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(*(login_loop(client, until, statuses, n) for n in range(logins)))
    return statuses


def storm_process(base: str, *, seconds: float, logins: int) -> subprocess.Popen[str]:
    """The login storm in a process of its own, so that its client work never stalls the
    event loop of the client that measures /verify (which would count against bastion)."""
    args = [sys.executable, __file__, "--generate", base, "--seconds", str(seconds)]
    return subprocess.Popen([*args, "--logins", str(logins)], stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rate", type=float, default=400, help="/verify requests per second")
    parser.add_argument("--streams", type=int, default=8, help="/verify connections")
    parser.add_argument("--logins", type=int, default=16)
    parser.add_argument("--generate", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:  # the storm process: print the login statuses it saw
        print(
            json.dumps(asyncio.run(storm(args.generate, seconds=args.seconds, logins=args.logins)))
        )
        return
    workdir = Path(tempfile.mkdtemp(prefix="bastion-storm-"))
    port = free_port()
    process, key = start_bastion(workdir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        paced = {"rate": args.rate, "streams": args.streams}
        asyncio.run(measure(port, key, seconds=1, **paced))  # warm up
        quiet = asyncio.run(measure(port, key, seconds=args.seconds, **paced))
        stormer = storm_process(base, seconds=args.seconds + 1, logins=args.logins)
        time.sleep(0.5)  # the storm is under way before the measurement starts
        stormy = asyncio.run(measure(port, key, seconds=args.seconds, **paced))
        out, _ = stormer.communicate(timeout=120)
        statuses = json.loads(out)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        "4. Forward-auth (/_bastion/verify, API key) at a fixed "
        f"{args.rate:.0f} requests/s, with and without a login storm"
    )
    for label, values in (("without storm", quiet), ("with storm", stormy)):
        p50, p99 = pct(values, 50) / 1000, pct(values, 99) / 1000
        print(f"  {label:<14} {len(values):6d} requests  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    rate = len(statuses) / (args.seconds + 1)
    busy = sum(s == 503 for s in statuses)
    print(f"  storm: {rate:.0f} login attempts/s answered ({busy} refused as busy, 503)")
    print(f"  -> p99 ratio {pct(stormy, 99) / pct(quiet, 99):.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
