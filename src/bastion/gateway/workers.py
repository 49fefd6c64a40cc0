"""What the worker processes of ``bastion serve --workers N`` share, made by the serving process
before it starts them and removed when it ends: the connection table
(`bastion.gateway.connection_table`), the rate-limit table when the limits are not in Redis
(`bastion.backends.ratelimit.shared`), and the directory of Prometheus's multiprocess mode,
in which each worker keeps its metrics in files of its own and a scrape adds them up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# How the serving process names what it made to its workers (their environment).
CONNECTIONS_ENV = "BASTION_CONNECTION_TABLE"
METRICS_ENV = "BASTION_METRICS_DIR"
RATE_LIMIT_ENV = "BASTION_RATE_LIMIT_TABLE"
PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the same directory, by prometheus_client's name
_PROC = Path("/proc")


def shared_directory() -> str | None:
    """Where shared files go: memory (``/dev/shm``) where there is one, else the temp dir."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (shared memory)


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """An empty directory for the workers' metric files (owner only), removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="bastion-metrics-", dir=shared_directory()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def shared(name: str) -> Path | None:
    """What the serving process made for its workers under the environment variable ``name``
    (one of the ``*_ENV`` above), or None when this process is not such a worker."""
    path = os.environ.get(name)
    return Path(path) if path else None


def is_live_sibling(pid: int) -> bool:
    """Whether ``pid`` is a live worker of this server: a child of the same parent, not a
    process that took the number of a worker that has ended."""
    if pid <= 0:
        return False
    if not _PROC.is_dir():  # no /proc (not Linux): whether the number is in use at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    state, parent = fields[0], int(fields[1])
    return state not in ("Z", "X") and parent == os.getppid()
