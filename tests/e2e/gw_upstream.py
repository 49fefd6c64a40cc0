"""A raw ASGI upstream for the gateway e2e tests: echoes what it received, can be slow, can hold
a request until released, speaks WebSocket (the text message ``headers`` is answered with the
handshake's headers as JSON), answers a path ending in ``/own-headers`` with headers bastion sets
itself (`OWN_HEADERS`), and counts the requests that reached it.

``python -m tests.e2e.gw_upstream --port N`` (from the repository root). ``/_up/…`` paths are
the tests' own controls and are called directly, never through bastion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from typing import Any

import uvicorn

State = dict[str, Any]
# Answered on a path ending in ``/own-headers``: headers bastion also answers with.
OWN_HEADERS = [
    (b"x-bastion-request-id", b"req_upstream"),
    (b"ratelimit-limit", b"1000"),
    (b"ratelimit-remaining", b"999"),
    (b"retry-after", b"7"),
]


def create_app() -> Any:
    state: State = {"count": 0, "held": 0, "events": defaultdict(asyncio.Event), "last": None}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
            return
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode()
        if path.startswith("/_up/"):
            await control(path, query, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # an aborted request never counts as served
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        state["count"] += 1
        if path.startswith("/hold/"):
            state["held"] += 1
            try:
                await state["events"][path.removeprefix("/hold/")].wait()
            finally:
                state["held"] -= 1
        if path.startswith("/slow"):
            await asyncio.sleep(float(query.removeprefix("s=") or 5))
        echo = {
            "method": scope["method"],
            "path": path,
            "rawPath": scope.get("raw_path", b"").decode("latin-1"),
            "query": query,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("utf-8", "replace"),
        }
        state["last"] = echo
        await reply(send, 200, echo, OWN_HEADERS if path.endswith("/own-headers") else [])

    async def control(path: str, query: str, send: Any) -> None:
        if path == "/_up/count":
            await reply(send, 200, {"count": state["count"], "held": state["held"]})
        elif path.startswith("/_up/release/"):
            state["events"][path.removeprefix("/_up/release/")].set()
            await reply(send, 200, {"released": True})
        elif path == "/_up/last":
            await reply(send, 200, state["last"])
        else:
            await reply(send, 404, {})

    async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        principal = dict(scope["headers"]).get(b"x-bastion-principal", b"").decode()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"hello {principal}"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "bye":
                await send({"type": "websocket.close", "code": 1000})
                return
            if message.get("text") == "headers":
                pairs = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
                await send({"type": "websocket.send", "text": json.dumps(pairs)})
                continue
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": "echo " + message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})

    return app


async def reply(
    send: Any, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(extra or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
