"""The upstream hop: aiohttp with a keep-alive pool, streaming both ways, timeouts, WebSockets.

aiohttp errors are translated here into `UpstreamError` / `UpstreamTimeoutError`; nothing from
aiohttp escapes this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from bastion.errors import UpstreamError, UpstreamTimeoutError
from bastion.gateway.headers import Headers, strip_hop_by_hop

CHUNK = 64 * 1024
WS_MAX_MESSAGE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0
    total: float = 60.0


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Headers
    _response: aiohttp.ClientResponse

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeoutError("upstream stopped sending") from None
        except aiohttp.ClientError:
            raise UpstreamError("upstream connection failed mid-response") from None


class UpstreamProxy:
    def __init__(self, base_url: str, *, timeouts: Timeouts = Timeouts()) -> None:
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(
            total=self._timeouts.total,
            sock_connect=self._timeouts.connect,
            sock_read=self._timeouts.read,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def request(
        self,
        *,
        method: str,
        target: str,
        headers: Headers,
        body: AsyncIterator[bytes] | bytes | None,
    ) -> AsyncIterator[UpstreamResponse]:
        """Send the request and yield the response whose body is still to be streamed."""
        if self._session is None:
            raise UpstreamError("the upstream client is not running")
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        try:
            response = await self._session.request(
                method,
                self._base + target,
                headers=str_headers,
                data=body,
                allow_redirects=False,
                compress=None,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeoutError("upstream did not answer in time") from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("upstream unreachable") from None
        try:
            raw = [(bytes(n), bytes(v)) for n, v in response.raw_headers]
            yield UpstreamResponse(response.status, strip_hop_by_hop(raw), response)
        finally:
            response.release()

    @asynccontextmanager
    async def websocket(
        self, *, target: str, headers: Headers, protocols: tuple[str, ...]
    ) -> AsyncIterator[UpstreamSocket]:
        """Open a WebSocket to the upstream; yields once the upstream has accepted."""
        if self._session is None:
            raise UpstreamError("the upstream client is not running")
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        try:
            ws = await self._session.ws_connect(
                self._base + target,
                headers=str_headers,
                protocols=protocols,
                autoping=True,
                max_msg_size=WS_MAX_MESSAGE,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._timeouts.connect),
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeoutError("upstream did not answer in time") from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("upstream refused the WebSocket") from None
        try:
            yield UpstreamSocket(ws)
        finally:
            await ws.close()


class UpstreamSocket:
    """An accepted upstream WebSocket: send and receive text or bytes, None when closed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    @property
    def protocol(self) -> str | None:
        return self._ws.protocol

    async def send(self, data: str | bytes) -> None:
        try:
            if isinstance(data, str):
                await self._ws.send_str(data)
            else:
                await self._ws.send_bytes(data)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            raise UpstreamError("upstream WebSocket closed") from None

    async def receive(self) -> str | bytes | None:
        try:
            message = await self._ws.receive(timeout=None)
        except (aiohttp.ClientError, ConnectionError):
            return None
        if message.type is aiohttp.WSMsgType.TEXT:
            return str(message.data)
        if message.type is aiohttp.WSMsgType.BINARY:
            return bytes(message.data)
        return None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def close(self, code: int = 1000) -> None:
        await self._ws.close(code=code)
