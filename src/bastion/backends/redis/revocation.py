"""The revocation broadcast over Redis pub/sub: replicas learn of a revocation in milliseconds.

Publishing is best effort. The listener runs in a daemon thread and tells the
revocation state whether it is subscribed; while it is not (Redis down, connection lost) every
check reads the epoch from the database, so losing Redis never re-enables a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from bastion.backends.redis.pubsub import PubSubChannel
from bastion.errors import StorageError

log = logging.getLogger("bastion.revocation")

CHANNEL = "revocations"


class RedisRevocationBroadcast:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._channel = PubSubChannel(
            url, channel=prefix + CHANNEL, thread_name="bastion-revocations", log=log
        )

    def publish(self, epoch: int) -> None:
        try:
            self._channel.publish(str(epoch).encode())
        except (RedisError, OSError) as exc:
            raise StorageError(f"publish revocation failed ({exc.__class__.__name__})") from None

    def listen(self, *, on_epoch: Callable[[int], None], on_health: Callable[[bool], None]) -> None:
        """Start the listener thread (idempotent): ``on_epoch`` for each announced epoch,
        ``on_health`` whenever the subscription is established or lost."""

        def on_message(data: bytes) -> None:
            try:
                epoch = int(data)
            except ValueError:
                return
            on_epoch(epoch)

        self._channel.listen(on_message=on_message, on_health=on_health)

    def close(self) -> None:
        self._channel.close()
