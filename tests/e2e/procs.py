"""Real processes on loopback for end-to-end tests: free ports, start, wait, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: held open together while they are chosen, so two of a
    stack's servers never get the same one (two separate picks can, and then the second server
    cannot bind while the first answers in its place)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def bastion(
    args: Sequence[str], *, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the bastion CLI as a user would, in ``cwd``."""
    result = subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"bastion {' '.join(args)} failed: {result.stderr}")
    return result


def start(args: Sequence[str], *, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_http(
    url: str, *, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    """Return once ``url`` answers 200 while ``process`` runs. Only a 200 counts: another server
    on the port (a 404 for a path it does not serve) is not ``process`` coming up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
