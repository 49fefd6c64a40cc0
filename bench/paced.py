"""A light fixed-rate HTTP/1.1 client for latency benchmarks (no coordinated omission).

Requests go out at a fixed total rate over several keep-alive connections on loopback, and
each latency runs from the request's scheduled send time, so a stall also counts against the
requests it delayed. Raw sockets and no HTTP library: the client must stay light enough that
its own CPU time is not what gets measured.
"""

from __future__ import annotations

import asyncio


def get_request(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One response (Content-Length or chunked body); returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return head[9:12]
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return head[9:12]


async def _paced(
    port: int, request: bytes, *, start: float, interval: float, count: int, out: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        for n in range(count):
            scheduled = start + n * interval
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            status = await _read_response(reader)
            out.append((loop.time() - scheduled) * 1e6)
            if status != b"200":
                raise SystemExit(f"port {port} answered {status.decode()}")
    finally:
        writer.close()


async def paced_latencies(
    port: int, request: bytes, *, seconds: float, rate: float, streams: int
) -> list[float]:
    """Latencies (µs) of ``request`` sent at a fixed total ``rate`` over ``streams``
    connections for ``seconds``; any answer but 200 stops the benchmark."""
    latencies: list[float] = []
    interval = streams / rate
    start = asyncio.get_running_loop().time() + 0.05
    count = int(seconds / interval)
    await asyncio.gather(
        *(
            _paced(
                port,
                request,
                start=start + i * interval / streams,
                interval=interval,
                count=count,
                out=latencies,
            )
            for i in range(streams)
        )
    )
    return latencies
