"""The audit writer process of ``bastion serve`` (`bastion.services.audit.process_writer`).

Started by the serving process as ``python -m bastion.audit_process`` with pipes on stdin and
stdout. It reads its setup (the serving process's loaded configuration and working directory),
opens the same storage with the same recorder (signing key, masking rules, checkpoints,
destination spools), answers ``ready``, then stores batches until its stdin ends.

Interrupts are ignored: Ctrl-C or a service manager's SIGTERM reaches the whole process group,
and the serving process, which shuts down gracefully, still needs its writer to store the last
batches. The writer ends when the serving process closes the pipe (or dies).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from bastion.backends import open_storage
from bastion.config import BastionConfig
from bastion.errors import BastionError
from bastion.heap import freeze_startup_heap
from bastion.services.audit import RecordingStorage
from bastion.services.audit.process_writer import read_frame, serve_batches, write_frame
from bastion.services.clock import SystemClock
from bastion.wiring_audit import audit_recorder_from


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Frames own the real stdout; anything else printed goes to stderr with the logs.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    requests = sys.stdin.buffer
    setup = read_frame(requests)
    if setup is None:
        return 1
    config, base_dir = setup
    assert isinstance(config, BastionConfig)
    try:
        recorder = audit_recorder_from(config, clock=SystemClock(), base_dir=Path(base_dir))
        storage = RecordingStorage(open_storage(config.storage.url, one_thread=True), recorder)
        storage.check()
    except BastionError as exc:
        write_frame(replies, ("error", exc.code))
        return 1
    freeze_startup_heap()
    write_frame(replies, ("ready",))
    try:
        serve_batches(storage, requests, replies)
    except BrokenPipeError:  # the serving process is gone
        return 0
    finally:
        storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
