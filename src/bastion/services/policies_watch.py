"""Hot reload of the Cedar policy files: on change (polled digests) and on request (SIGHUP)."""

from __future__ import annotations

import logging
import threading

from bastion.services.policies import PolicyEngine

log = logging.getLogger("bastion.policies")


class PolicyWatcher:
    """A daemon thread that reloads ``engine`` when its files change or `request_reload` asks.

    A failed reload is audited once per distinct content on disk, not once per poll.
    """

    def __init__(self, engine: PolicyEngine, *, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = engine.digests()

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
        """One round: reload if forced or the files changed. True if a new set is in force."""
        digest = self._engine.digests()
        if not forced and digest == self._seen:
            return False
        self._seen = digest
        return self._engine.reload(trigger="signal" if forced else "file change")

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
