"""The WebSocket relay's message limit, whatever ASGI server runs bastion.

`bastion serve` gives uvicorn ``inputValidation.maxSize`` as its frame limit as well (the e2e test
in tests/e2e/test_gateway_inputs.py); here the relay itself enforces it, under any server.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from bastion.gateway.websocket import MESSAGE_TOO_BIG, pump


class Upstream:
    """An upstream that records what reaches it and answers nothing until closed."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.closed_with: int | None = None
        self._closed = asyncio.Event()

    async def send(self, data: str | bytes) -> None:
        self.received.append(data)

    async def receive(self) -> str | bytes | None:
        await self._closed.wait()
        return None

    @property
    def close_code(self) -> int | None:
        return self.closed_with

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code
        self._closed.set()


def relay(messages: list[dict[str, Any]], limit: int | None) -> tuple[Upstream, list[Any]]:
    upstream = Upstream()
    sent: list[MutableMapping[str, Any]] = []

    async def run() -> None:
        queue = [*messages, {"type": "websocket.disconnect"}]

        async def receive() -> MutableMapping[str, Any]:
            return queue.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await pump(receive, send, upstream, limit)  # type: ignore[arg-type]

    asyncio.run(run())
    return upstream, sent


def test_message_over_the_limit_is_not_forwarded_and_closes_both_sides_1009() -> None:
    upstream, sent = relay(
        [
            {"type": "websocket.receive", "text": "é" * 5},  # 10 bytes: within
            {"type": "websocket.receive", "text": "é" * 6},  # 12 bytes of UTF-8: over
            {"type": "websocket.receive", "text": "never"},
        ],
        limit=10,
    )
    assert upstream.received == ["é" * 5]
    assert upstream.closed_with == MESSAGE_TOO_BIG
    assert sent == [{"type": "websocket.close", "code": MESSAGE_TOO_BIG}]


def test_binary_message_over_the_limit_is_refused_too() -> None:
    upstream, sent = relay([{"type": "websocket.receive", "bytes": b"\0" * 11}], limit=10)
    assert upstream.received == []
    assert sent == [{"type": "websocket.close", "code": MESSAGE_TOO_BIG}]


def test_without_input_validation_messages_pass_whole() -> None:
    big = b"\0" * 100_000
    upstream, _ = relay([{"type": "websocket.receive", "bytes": big}], limit=None)
    assert upstream.received == [big]
    assert upstream.closed_with == 1000
