"""The baselines bastion is measured against, on the same server and client libraries:

- ``passthrough``: uvicorn + an aiohttp keep-alive pool forwarding every request to the upstream
  and streaming the answer back, with no decision at all;
- ``verify``: uvicorn answering every request 200 at once (a minimal forward-auth endpoint).

``python bench/gateway/baselines.py passthrough --port P --upstream http://127.0.0.1:U``
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn


def passthrough_app(upstream: str) -> Any:
    state: dict[str, aiohttp.ClientSession] = {}
    hop = {b"connection", b"keep-alive", b"transfer-encoding", b"host", b"upgrade", b"te"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["session"] = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                        auto_decompress=False,
                        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                    )
                elif message["type"] == "lifespan.shutdown":
                    await state["session"].close()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in hop
        ]
        target = upstream + scope["raw_path"].decode("latin-1")
        async with state["session"].request(scope["method"], target, headers=headers) as response:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (bytes(k), bytes(v))
                        for k, v in response.raw_headers
                        if bytes(k).lower() not in hop
                    ],
                }
            )
            async for chunk in response.content.iter_chunked(65536):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


async def verify_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["passthrough", "verify"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    args = parser.parse_args()
    app = passthrough_app(args.upstream) if args.mode == "passthrough" else verify_app
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
