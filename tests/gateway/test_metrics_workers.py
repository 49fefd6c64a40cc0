"""The gateway's metrics with `bastion serve --workers N`: a scrape answered by any worker adds up
every worker's counts (Prometheus's multiprocess mode, in the directory `serve` makes).

Each "worker" is a real process, a child of the test as uvicorn's workers are of `serve`: the
mode is chosen when prometheus_client is imported, from the environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.gateway.workers import PROMETHEUS_ENV, metrics_directory

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bastion.gateway.metrics import GatewayMetrics
    shared, served, store, then = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    metrics = GatewayMetrics(shared)
    metrics.track_connections(lambda: 7)
    for _ in range(served):
        metrics.observe("proxy", 200)
    metrics.connections_refused.labels("per_client").inc()
    if store == "down":
        metrics.rate_limit_store_up.set(0)
    if then == "render":
        sys.stdout.write(metrics.render().decode())
    else:
        print("ready", flush=True)
        sys.stdin.readline()  # alive until told
    """
)


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in:\n{text}"
    return float(found.group(1))


@pytest.fixture
def shared() -> Iterator[Path]:
    with metrics_directory() as path:
        yield path


def worker(shared: Path, served: int, store: str = "up") -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(shared), str(served), store, "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, PROMETHEUS_ENV: str(shared)},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def scrape(shared: Path) -> str:
    """What a scrape answered by a new worker (which served nothing itself) shows."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(shared), "0", "up", "render"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, PROMETHEUS_ENV: str(shared)},
        check=True,
    )
    return done.stdout


def end(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate(timeout=10)


def test_a_scrape_adds_up_every_workers_counts(shared: Path) -> None:
    workers = [worker(shared, 3), worker(shared, 4, store="down")]
    try:
        text = scrape(shared)
    finally:
        for process in workers:
            end(process)
    assert sample(text, 'bastion_requests_total{mode="proxy",status="2xx"}') == 7
    assert sample(text, 'bastion_connections_refused_total{reason="per_client"}') == 3
    assert sample(text, "bastion_rate_limit_store_up") == 0  # one live worker sees it down
    assert sample(text, "bastion_connections_open") == 7  # read from what all workers share


def test_an_ended_worker_keeps_its_counts_but_not_its_view_of_the_store(shared: Path) -> None:
    end(worker(shared, 5, store="down"))  # killed, as a worker that crashed
    text = scrape(shared)
    assert sample(text, 'bastion_requests_total{mode="proxy",status="2xx"}') == 5  # no total drops
    assert sample(text, "bastion_rate_limit_store_up") == 1


def test_the_directory_is_the_owners_and_removed_when_serving_ends() -> None:
    with metrics_directory() as path:
        (path / "counter_1.db").write_bytes(b"")
        assert path.stat().st_mode & 0o077 == 0
    assert not path.exists()
