"""Compiled-model invalidation over Redis pub/sub: a change of roles, bindings or rules on one
replica drops the compiled models of every replica within milliseconds.

Best effort by design: the stored authorization version stays the source of truth. While the
listener is subscribed, replicas re-read that version at most once a second as a safety net;
while it is not (Redis down), they read it on every decision, so losing Redis never keeps a
removed grant alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from bastion.backends.redis.pubsub import PubSubChannel

log = logging.getLogger("bastion.authz")

CHANNEL = "authz-model"


class RedisModelBroadcast:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._channel = PubSubChannel(
            url, channel=prefix + CHANNEL, thread_name="bastion-authz-bus", log=log
        )

    def publish(self) -> None:
        try:
            self._channel.publish(b"changed")
        except (RedisError, OSError) as exc:
            # The other replicas still see the stored version move; say so and go on.
            log.warning("authz model broadcast failed (%s)", exc.__class__.__name__)

    def listen(self, *, on_change: Callable[[], None], on_health: Callable[[bool], None]) -> None:
        """Start the listener thread (idempotent)."""
        self._channel.listen(on_message=lambda _data: on_change(), on_health=on_health)

    def close(self) -> None:
        self._channel.close()
