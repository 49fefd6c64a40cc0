"""Hot reload of the Cedar policy files: on change (polled digests) and on request (SIGHUP).

A change is applied only once two polls in a row read the files alike. A file read while it is
being written can end between two policies, and that prefix parses and validates: applied, it
would drop every later policy (a forbid among them) until the next poll. Waiting one interval
for the files to settle is the price. It cannot see a writer that stalls longer than an
interval; writers should still write a new file and rename it over the old one.
"""

from __future__ import annotations

import logging
import threading

from bastion.services.policies import PolicyEngine

log = logging.getLogger("bastion.policies")


class PolicyWatcher:
    """A daemon thread that reloads ``engine`` when its files change or `request_reload` asks.

    A failed reload is audited once per distinct content on disk, not once per poll: a
    change is what differs from the files as the engine last read them, by any trigger.
    """

    def __init__(self, engine: PolicyEngine, *, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: str | None = None  # a change read once, waiting for a second read

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="bastion-policy-watch", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def request_reload(self) -> None:
        """Reload at once (safe to call from a signal handler: it only sets an event)."""
        self._wake.set()

    def poll(self, *, forced: bool = False) -> bool:
        """One round: reload if forced (at once, as the operator asked), or if the files
        changed and read alike on the previous round too. True if a new set is in force."""
        if forced:
            self._pending = None
            return self._engine.reload(trigger="signal")
        digest = self._engine.digests()
        if digest == self._engine.last_read:
            self._pending = None
            return False
        if digest != self._pending:
            self._pending = digest
            return False
        self._pending = None
        return self._engine.reload(trigger="file change", expect=digest)

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self.poll(forced=forced)
            except Exception:  # the watcher must survive anything; the set in force stays
                log.exception("policy watcher round failed")
