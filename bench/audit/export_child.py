"""Export an audit trail (ndjson) to a counting sink; print rate, events, peak RSS (KiB)."""

from __future__ import annotations

import resource
import sys
import time
from datetime import timedelta
from typing import Any

from bastion.backends import open_storage
from bastion.crypto.checkpoints import CheckpointSigner
from bastion.services.audit.export import export

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from workload import SEAL_EVERY, SEAL_INTERVAL, T0  # bench/audit/workload.py


class Sink:
    """A text sink that only counts: the measurement is bastion's side, not the disk's."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM): ru_maxrss may carry the parent's over exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    url, since_days = sys.argv[1], sys.argv[2]
    storage = open_storage(url)
    signer = CheckpointSigner.from_pepper(b"bench-pepper-" + b"x" * 32)
    since = T0 + timedelta(days=int(since_days)) if since_days else None
    sink = Sink()
    start = time.perf_counter()
    result = export(
        storage,
        sink,  # type: ignore[arg-type]
        fmt="ndjson",
        since=since,
        signer=signer,
        signature_valid=signer.verifier().valid,
        now=T0 + timedelta(days=40),
        max_unsigned=SEAL_EVERY,
        seal_interval=SEAL_INTERVAL,
    )
    seconds = time.perf_counter() - start
    peak_kib = peak_rss_kib()
    print(f"{result.events / seconds:.0f} {result.events} {peak_kib}")


if __name__ == "__main__":
    main()
