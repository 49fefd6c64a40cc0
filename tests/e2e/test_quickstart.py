"""`bastion quickstart` in an empty directory: the curl lines it prints behave as printed,
and Ctrl-C stops bastion and the sample upstream."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e import procs

pytestmark = pytest.mark.e2e


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line.startswith(marker):
            return seen
    raise AssertionError("quickstart did not print its welcome:\n" + "\n".join(seen))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _started(directory: Path, port: int, upstream_port: int) -> subprocess.Popen[str]:
    """`bastion quickstart` in ``directory``, in a session of its own (a terminal's group)."""
    ports = ["--port", str(port), "--upstream-port", str(upstream_port)]
    return subprocess.Popen(
        [sys.executable, "-m", "bastion", "quickstart", *ports],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_quickstart_curl_lines_behave_as_printed(tmp_path: Path) -> None:
    port, upstream_port = procs.free_ports(2)
    process = _started(tmp_path, port, upstream_port)
    try:
        output = _read_until(process, "Then:", timeout=60)
        deadline = time.monotonic() + 20
        while not _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        pairs = []
        for comment, command in itertools.pairwise(output):
            expected = re.match(r"\s*# (\d{3}):", comment)
            if expected and command.strip().startswith("curl "):
                pairs.append((expected[1], command.strip()))
        assert [code for code, _ in pairs] == ["200", "401", "403"]
        for code, command in pairs:
            result = subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, timeout=30
            )
            assert result.stdout.strip() == code, (command, result.stdout, result.stderr)
        assert (tmp_path / "bastion.yaml").exists()
        assert (tmp_path / "bastion.db").exists()
        assert (tmp_path / "bastion.pepper").stat().st_mode & 0o077 == 0
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        returncode = process.wait(timeout=30)
    assert returncode == 0
    assert not _port_open(port)
    assert not _port_open(upstream_port)


def _quickstart(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "quickstart", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_quickstart_refuses_a_busy_port_before_printing_keys(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        done = _quickstart(tmp_path, "--port", str(busy), "--upstream-port", str(procs.free_port()))
    assert done.returncode != 0
    assert "bastion is running" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{busy} (Address already in use)"
    )


def test_quickstart_refuses_ports_its_existing_config_does_not_use(tmp_path: Path) -> None:
    first = procs.free_port()
    with socket.socket() as holder:  # the first run stops at the busy upstream port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        _quickstart(tmp_path, "--port", str(first), "--upstream-port", str(holder.getsockname()[1]))
    assert (tmp_path / "bastion.yaml").exists()
    other = procs.free_port()
    done = _quickstart(tmp_path, "--port", str(other))
    assert done.returncode != 0
    assert "bastion is running" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --port {other}: ") and f"already sets {first}" in last


def test_quickstart_stopped_by_sigterm_stops_the_sample_upstream_too(tmp_path: Path) -> None:
    """`kill PID` (a supervisor, a terminal that closes) reaches bastion alone, not its group.
    Before, uvicorn re-raised it after shutting down and the process ended at once, leaving
    the sample upstream running and holding its port."""
    port, upstream_port = procs.free_ports(2)
    process = _started(tmp_path, port, upstream_port)
    try:
        _read_until(process, "Then:", timeout=60)
        deadline = time.monotonic() + 20
        while not _port_open(upstream_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _port_open(upstream_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _port_open(upstream_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _port_open(upstream_port)
        assert not _port_open(port)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(process.pid, signal.SIGKILL)
