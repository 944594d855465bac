"""httpx transports that send through a pyqwest(-stand-in) transport, as
``pyqwest.httpx`` provides: the E2B SDK's generated REST clients and its envd
file-transfer calls are httpx clients on top of the shared pool.

httpx's per-phase timeouts collapse into one deadline (read + write; any phase
set to None means none), applied to the whole exchange; the connect timeout
belongs to the pyqwest transport.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from .._headers import Headers
from .._transport import set_sync_timeout
from .._types import ReadError, RemoteProtocolError, Request, SyncRequest, WriteError

__all__ = ["AsyncPyqwestTransport", "PyqwestTransport"]


def _timeout(request: httpx.Request) -> float | None:
    t = request.extensions.get("timeout") or {}
    read, write = t.get("read"), t.get("write")
    if read is None or write is None:
        return None
    return read + write


def _as_httpx(e: Exception, request: httpx.Request | None) -> Exception:
    kw = {"request": request} if request is not None else {}
    if isinstance(e, ConnectionError):
        if isinstance(e, TimeoutError):
            return httpx.ConnectTimeout(str(e), **kw)
        return httpx.ConnectError(str(e), **kw)
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(str(e) or "timed out", **kw)
    if isinstance(e, RemoteProtocolError):
        return httpx.RemoteProtocolError(str(e), **kw)
    if isinstance(e, WriteError):
        return httpx.WriteError(str(e), **kw)
    if isinstance(e, ReadError):
        return httpx.ReadError(str(e), **kw)
    return e


def _body(stream):
    # Buffered bodies keep their length (Content-Length); others stream.
    if isinstance(stream, httpx.ByteStream):
        return b"".join(stream)
    return stream


class _SyncStream(httpx.SyncByteStream):
    def __init__(self, response, request) -> None:
        self._response = response
        self._request = request

    def __iter__(self):
        try:
            for chunk in self._response.content:
                yield bytes(chunk)
        except (ConnectionError, TimeoutError, RemoteProtocolError, ReadError, WriteError) as e:
            raise _as_httpx(e, self._request) from e

    def close(self) -> None:
        self._response.close()


class PyqwestTransport(httpx.BaseTransport):
    def __init__(self, transport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        preq = SyncRequest(request.method, str(request.url), Headers(request.headers.multi_items()), _body(request.stream))
        try:
            with set_sync_timeout(_timeout(request)):
                resp = self._transport.execute_sync(preq)
        except (ConnectionError, TimeoutError, RemoteProtocolError, ReadError, WriteError) as e:
            raise _as_httpx(e, request) from e
        return httpx.Response(resp.status, headers=resp.headers.items(), stream=_SyncStream(resp, request))

    def close(self) -> None:
        # The pool is shared; closing one httpx client must not close it.
        pass


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, response, request, deadline: float | None) -> None:
        self._response = response
        self._request = request
        self._deadline = deadline

    async def __aiter__(self):
        loop = asyncio.get_running_loop()
        content = self._response.content.__aiter__()
        try:
            while True:
                left = None if self._deadline is None else max(0.0, self._deadline - loop.time())
                try:
                    chunk = await asyncio.wait_for(content.__anext__(), left)
                except StopAsyncIteration:
                    break
                yield bytes(chunk)
        except (ConnectionError, TimeoutError, asyncio.TimeoutError, RemoteProtocolError, ReadError, WriteError) as e:
            raise _as_httpx(e, self._request) from e

    async def aclose(self) -> None:
        await self._response.aclose()


class AsyncPyqwestTransport(httpx.AsyncBaseTransport):
    def __init__(self, transport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = _timeout(request)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        preq = Request(request.method, str(request.url), Headers(request.headers.multi_items()), _body(request.stream))
        try:
            resp = await asyncio.wait_for(self._transport.execute(preq), timeout)
        except (ConnectionError, TimeoutError, asyncio.TimeoutError, RemoteProtocolError, ReadError, WriteError) as e:
            raise _as_httpx(e, request) from e
        return httpx.Response(resp.status, headers=resp.headers.items(), stream=_AsyncStream(resp, request, deadline))

    async def aclose(self) -> None:
        pass
