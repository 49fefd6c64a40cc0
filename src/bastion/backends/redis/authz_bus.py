"""Compiled-model invalidation over Redis pub/sub: a change of roles, bindings or rules on one
replica drops the compiled models of every replica within milliseconds.

Best effort by design: the stored authorization version stays the source of truth. While the
listener is subscribed, replicas re-read that version at most once a second as a safety net;
while it is not (Redis down), they read it on every decision, so losing Redis never keeps a
removed grant alive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

log = logging.getLogger("bastion.authz")

CHANNEL = "authz-model"
RECONNECT_SECONDS = 0.5


class RedisModelBroadcast:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._channel = prefix + CHANNEL
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        try:
            self._client.publish(self._channel, b"changed")
        except (RedisError, OSError) as exc:
            # The other replicas still see the stored version move; say so and go on.
            log.warning("authz model broadcast failed (%s)", exc.__class__.__name__)

    def listen(self, *, on_change: Callable[[], None], on_health: Callable[[bool], None]) -> None:
        """Start the listener thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(on_change, on_health), name="bastion-authz-bus", daemon=True
        )
        self._thread.start()

    def _run(self, on_change: Callable[[], None], on_health: Callable[[bool], None]) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                on_health(True)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        on_change()
            except (RedisError, OSError):
                on_health(False)
                log.warning("authz model listener lost Redis; reading the version every time")
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                on_health(False)
                with contextlib.suppress(RedisError, OSError):
                    pubsub.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._client.close()
