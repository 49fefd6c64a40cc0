"""One Redis pub/sub channel with a reconnecting listener thread, shared by the broadcasts
(revocations, compiled-model invalidation).

The listener reports its health: True once subscribed, False whenever the subscription is lost
(it retries every ``RECONNECT_SECONDS``). Callers treat an unhealthy listener as "no broadcast"
and read the database instead, so losing Redis never weakens a decision.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

RECONNECT_SECONDS = 0.5


class PubSubChannel:
    def __init__(self, url: str, *, channel: str, thread_name: str, log: logging.Logger) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._channel = channel
        self._thread_name = thread_name
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, data: bytes) -> None:
        """Send ``data``; `RedisError` or `OSError` when Redis cannot be reached."""
        self._client.publish(self._channel, data)

    def listen(
        self, *, on_message: Callable[[bytes], None], on_health: Callable[[bool], None]
    ) -> None:
        """Start the listener thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(on_message, on_health), name=self._thread_name, daemon=True
        )
        self._thread.start()

    def _run(self, on_message: Callable[[bytes], None], on_health: Callable[[bool], None]) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]
            try:
                pubsub.subscribe(self._channel)
                on_health(True)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        on_message(bytes(message["data"]))
            except (RedisError, OSError):
                on_health(False)
                self._log.warning("%s lost Redis; reading the database instead", self._thread_name)
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
