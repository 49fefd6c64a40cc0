"""The revocation broadcast over Redis pub/sub: replicas learn of a revocation in milliseconds.

Publishing is best effort. The listener runs in a daemon thread and tells the
revocation state whether it is subscribed; while it is not (Redis down, connection lost) every
check reads the epoch from the database, so losing Redis never re-enables a credential.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

from bastion.errors import StorageError

log = logging.getLogger("bastion.revocation")

CHANNEL = "revocations"
RECONNECT_SECONDS = 0.5


class RedisRevocationBroadcast:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._channel = prefix + CHANNEL
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, epoch: int) -> None:
        try:
            self._client.publish(self._channel, str(epoch))
        except (RedisError, OSError) as exc:
            raise StorageError(f"publish revocation failed ({exc.__class__.__name__})") from None

    def listen(self, *, on_epoch: Callable[[int], None], on_health: Callable[[bool], None]) -> None:
        """Start the listener thread (idempotent): ``on_epoch`` for each announced epoch,
        ``on_health`` whenever the subscription is established or lost."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(on_epoch, on_health), name="bastion-revocations", daemon=True
        )
        self._thread.start()

    def _run(self, on_epoch: Callable[[int], None], on_health: Callable[[bool], None]) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                on_health(True)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            on_epoch(int(message["data"]))
                        except (TypeError, ValueError):
                            continue
            except (RedisError, OSError):
                on_health(False)
                log.warning("revocation listener lost Redis; checking the database every time")
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
