"""HTTPTransport / SyncHTTPTransport and the clients over them, on httpcore
(through httpx's transport classes, from Debian's python3-httpx).

pyqwest's own transports are Rust (reqwest/hyper); this stand-in keeps their
observable behaviour where the E2B SDK and connectrpc depend on it:
- plaintext URLs use HTTP/1.1 (reqwest without prior knowledge does the same);
  TLS negotiates HTTP/2 through ALPN when h2 is installed;
- a request body given as an iterator goes out chunked, bytes with a length;
- gzip/deflate responses are decoded and lose Content-Encoding/-Length, and
  ``accept-encoding: gzip`` is added when the request has none (reqwest's gzip
  feature); brotli/zstd are not offered;
- connection failures raise the builtin ConnectionError (before anything was
  written), timeouts TimeoutError, later I/O failures ReadError/WriteError;
- a per-request timeout (SyncClient's ``timeout=``, or the transport's
  ``timeout``) is a deadline for the whole exchange, body included;
- redirects are never followed (the SDK turns them off; the stand-in has no
  redirect support, so asking for it is an error).
Connection pools are per event loop for the async transport (httpcore's pool
belongs to one loop), process-wide for the sync one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ssl
import time
import weakref
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol, runtime_checkable

import httpx

from ._headers import Headers
from ._types import (
    ConnectTimeout,
    FullResponse,
    HTTPVersion,
    Proxy,
    ReadError,
    RemoteProtocolError,
    Request,
    Response,
    SyncRequest,
    SyncResponse,
    WriteError,
    encode_content,
    with_params,
)

# The sync per-request timeout travels from SyncClient (or the httpx adapter)
# down through wrapping transports (retries, the SDK's error normaliser) to the
# HTTP transport, like pyqwest's set_sync_timeout.
_sync_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("pyqwest_sync_timeout", default=None)


@contextlib.contextmanager
def set_sync_timeout(timeout: float | None):
    token = _sync_timeout.set(timeout)
    try:
        yield
    finally:
        _sync_timeout.reset(token)


def get_sync_timeout() -> float | None:
    return _sync_timeout.get()


def map_error(e: Exception) -> Exception:
    """httpx/httpcore errors as pyqwest raises them."""
    if isinstance(e, httpx.ConnectTimeout):
        return ConnectTimeout(str(e) or "connect timed out")
    if isinstance(e, httpx.ConnectError):
        return ConnectionError(str(e) or "connection failed")
    if isinstance(e, httpx.TimeoutException):
        return TimeoutError(str(e) or "timed out")
    if isinstance(e, (httpx.RemoteProtocolError, httpx.LocalProtocolError)):
        return RemoteProtocolError(str(e))
    if isinstance(e, httpx.WriteError):
        return WriteError(str(e))
    if isinstance(e, httpx.NetworkError):
        return ReadError(str(e))
    return e


class _Decoder:
    """gzip/deflate body decoding, as reqwest does with its gzip feature."""

    def __init__(self, encoding: str) -> None:
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        return self._d.decompress(data)

    def end(self) -> bytes:
        return self._d.flush()


def _response_headers(raw: httpx.Headers) -> tuple[Headers, _Decoder | None]:
    headers = Headers(raw.multi_items())
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "deflate"):
        del headers["content-encoding"]
        headers.pop("content-length", None)
        return headers, _Decoder(encoding)
    return headers, None


def _remaining(deadline: float | None, clock) -> float | None:
    if deadline is None:
        return None
    left = deadline - clock()
    if left <= 0:
        raise TimeoutError("request timed out")
    return left


class _Config:
    """The subset of pyqwest's HTTPTransport options the stand-in honours."""

    def __init__(
        self,
        *,
        tls_ca_cert: bytes | None = None,
        tls_include_system_certs: bool = False,
        tls_key: bytes | None = None,
        tls_cert: bytes | None = None,
        http_version: HTTPVersion | None = None,
        proxy: str | Proxy | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = 30.0,
        read_timeout: float | None = None,
        pool_idle_timeout: float | None = 90.0,
        pool_max_idle_per_host: int | None = None,
        tcp_keepalive_interval: float | None = 30.0,
        enable_gzip: bool = True,
        enable_brotli: bool = True,
        enable_zstd: bool = True,
        use_system_dns: bool = False,
        enable_cookie_store: bool = False,
        follow_redirects: bool = False,
        max_redirects: int = 10,
        enable_otel: bool = True,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        if follow_redirects:
            raise NotImplementedError("the pyqwest stand-in does not follow redirects")
        if enable_cookie_store:
            raise NotImplementedError("the pyqwest stand-in has no cookie store")
        if tls_key is not None or tls_cert is not None:
            raise NotImplementedError("the pyqwest stand-in has no client certificates")
        ctx = ssl.create_default_context() if tls_include_system_certs else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls_ca_cert is not None:
            ctx.load_verify_locations(cadata=tls_ca_cert.decode())
        self.verify = ctx
        self.http1 = http_version in (None, HTTPVersion.HTTP1)
        self.http2 = http_version in (None, HTTPVersion.HTTP2)
        if http_version == HTTPVersion.HTTP3:
            raise NotImplementedError("the pyqwest stand-in has no HTTP/3")
        if isinstance(proxy, str):
            proxy = Proxy(proxy)
        self.proxy = None if proxy is None else httpx.Proxy(proxy.url, auth=proxy.auth, headers=proxy.headers.items())
        self.timeout = timeout
        self.timeouts = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=None, pool=None)
        self.limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=pool_max_idle_per_host,
            keepalive_expiry=pool_idle_timeout,
        )
        self.gzip = enable_gzip

    def transport_kwargs(self) -> dict:
        return dict(verify=self.verify, http1=self.http1, http2=self.http2, limits=self.limits, proxy=self.proxy)

    def build(self, request: Request, body: Any, read_timeout: float | None) -> httpx.Request:
        headers = Headers(request.headers.items())
        if self.gzip and "accept-encoding" not in headers:
            headers["accept-encoding"] = "gzip"
        timeouts = self.timeouts
        if read_timeout is not None:
            read = read_timeout if timeouts.read is None else min(timeouts.read, read_timeout)
            timeouts = httpx.Timeout(connect=timeouts.connect, read=read, write=read_timeout, pool=None)
        return httpx.Request(
            request.method,
            request.url,
            headers=headers.items(),
            content=body,
            extensions={"timeout": timeouts.as_dict()},
        )


class HTTPTransport:
    def __init__(self, **options: Any) -> None:
        self._config = _Config(**options)
        self._pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport]" = (
            weakref.WeakKeyDictionary()
        )

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(**self._config.transport_kwargs())
            self._pools[loop] = pool
        return pool

    async def __aenter__(self) -> "HTTPTransport":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    async def execute(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        deadline = None if self._config.timeout is None else loop.time() + self._config.timeout
        hreq = self._config.build(request, _async_body(request.content), self._config.timeout)
        try:
            hresp = await asyncio.wait_for(self._pool().handle_async_request(hreq), _remaining(deadline, loop.time))
        except asyncio.TimeoutError as e:
            raise TimeoutError("request timed out") from e
        except httpx.HTTPError as e:
            raise map_error(e) from e
        headers, decoder = _response_headers(hresp.headers)

        async def content() -> AsyncIterator[bytes]:
            chunks = hresp.stream.__aiter__()
            try:
                while True:
                    try:
                        chunk = await asyncio.wait_for(chunks.__anext__(), _remaining(deadline, loop.time))
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError as e:
                        raise TimeoutError("request timed out") from e
                    except httpx.HTTPError as e:
                        raise map_error(e) from e
                    out = decoder.feed(chunk) if decoder else chunk
                    if out:
                        yield out
                if decoder and (tail := decoder.end()):
                    yield tail
            finally:
                await hresp.aclose()

        return Response(status=hresp.status_code, headers=headers, content=content(), _close=hresp.aclose)


class SyncHTTPTransport:
    def __init__(self, **options: Any) -> None:
        self._config = _Config(**options)
        self._pool = httpx.HTTPTransport(**self._config.transport_kwargs())

    def __enter__(self) -> "SyncHTTPTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def execute_sync(self, request: SyncRequest) -> SyncResponse:
        timeout = get_sync_timeout()
        if timeout is None:
            timeout = self._config.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        hreq = self._config.build(request, _sync_body(request.content), timeout)
        try:
            hresp = self._pool.handle_request(hreq)
        except httpx.HTTPError as e:
            raise map_error(e) from e
        headers, decoder = _response_headers(hresp.headers)

        def content() -> Iterator[bytes]:
            try:
                for chunk in _mapped(hresp.stream):
                    # httpcore bounds each read by the read timeout; the
                    # deadline bounds the whole body.
                    _remaining(deadline, time.monotonic)
                    out = decoder.feed(chunk) if decoder else chunk
                    if out:
                        yield out
                if decoder and (tail := decoder.end()):
                    yield tail
            finally:
                hresp.close()

        return SyncResponse(status=hresp.status_code, headers=headers, content=content(), _close=hresp.close)


def _async_body(content: Any) -> Any:
    """Bytes as they are; any (async) iterable as an async generator, so that
    httpx sends it chunked on the async transport whatever object it is (httpx
    would take an object with both __iter__ and __aiter__ for a sync stream)."""
    if content is None or isinstance(content, bytes):
        return content

    async def chunks() -> AsyncIterator[bytes]:
        if hasattr(content, "__aiter__"):
            async for chunk in content:
                yield bytes(chunk)
        else:
            for chunk in content:
                yield bytes(chunk)

    return chunks()


def _sync_body(content: Any) -> Any:
    if content is None or isinstance(content, bytes):
        return content
    return (bytes(chunk) for chunk in content)


def _mapped(stream) -> Iterator[bytes]:
    it = iter(stream)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except httpx.HTTPError as e:
            raise map_error(e) from e
        yield chunk


@runtime_checkable
class Transport(Protocol):
    async def execute(self, request: Request) -> Response: ...


@runtime_checkable
class SyncTransport(Protocol):
    def execute_sync(self, request: SyncRequest) -> SyncResponse: ...


_default_transport: HTTPTransport | None = None
_default_sync_transport: SyncHTTPTransport | None = None


def get_default_transport() -> HTTPTransport:
    global _default_transport
    if _default_transport is None:
        _default_transport = HTTPTransport()
    return _default_transport


def get_default_sync_transport() -> SyncHTTPTransport:
    global _default_sync_transport
    if _default_sync_transport is None:
        _default_sync_transport = SyncHTTPTransport()
    return _default_sync_transport


class Client:
    """Async client: buffered helpers and ``stream`` (an async context manager)."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._transport = transport or get_default_transport()

    def _request(self, method: str, url: str, headers, content, params) -> Request:
        hdrs = Headers(headers)
        return Request(method, with_params(url, params), hdrs, encode_content(content, hdrs))

    async def execute(self, method: str, url: str, headers=None, content=None, *, params=None) -> FullResponse:
        async with self.stream(method, url, headers, content, params=params) as resp:
            body = bytearray()
            async for chunk in resp.content:
                body.extend(chunk)
            return FullResponse(status=resp.status, headers=resp.headers, content=bytes(body), trailers=resp.trailers)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, headers=None, content=None, *, params=None):
        resp = await self._transport.execute(self._request(method, url, headers, content, params))
        try:
            yield resp
        finally:
            await resp.aclose()

    async def get(self, url: str, headers=None, *, params=None) -> FullResponse:
        return await self.execute("GET", url, headers, params=params)

    async def post(self, url: str, headers=None, content=None, *, params=None) -> FullResponse:
        return await self.execute("POST", url, headers, content, params=params)

    async def put(self, url: str, headers=None, content=None, *, params=None) -> FullResponse:
        return await self.execute("PUT", url, headers, content, params=params)

    async def patch(self, url: str, headers=None, content=None, *, params=None) -> FullResponse:
        return await self.execute("PATCH", url, headers, content, params=params)

    async def delete(self, url: str, headers=None, *, params=None) -> FullResponse:
        return await self.execute("DELETE", url, headers, params=params)

    async def head(self, url: str, headers=None, *, params=None) -> FullResponse:
        return await self.execute("HEAD", url, headers, params=params)

    async def options(self, url: str, headers=None, *, params=None) -> FullResponse:
        return await self.execute("OPTIONS", url, headers, params=params)


class SyncClient:
    """Sync client; ``timeout=`` is a whole-exchange deadline."""

    def __init__(self, transport: SyncTransport | None = None) -> None:
        self._transport = transport or get_default_sync_transport()

    def execute(self, method: str, url: str, headers=None, content=None, *, timeout=None, params=None) -> FullResponse:
        with self.stream(method, url, headers, content, timeout=timeout, params=params) as resp:
            body = bytearray()
            for chunk in resp.content:
                body.extend(chunk)
            return FullResponse(status=resp.status, headers=resp.headers, content=bytes(body), trailers=resp.trailers)

    def stream(self, method: str, url: str, headers=None, content=None, *, timeout=None, params=None) -> SyncResponse:
        hdrs = Headers(headers)
        request = SyncRequest(method, with_params(url, params), hdrs, encode_content(content, hdrs))
        with set_sync_timeout(timeout):
            return self._transport.execute_sync(request)

    def get(self, url: str, headers=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("GET", url, headers, timeout=timeout, params=params)

    def post(self, url: str, headers=None, content=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("POST", url, headers, content, timeout=timeout, params=params)

    def put(self, url: str, headers=None, content=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("PUT", url, headers, content, timeout=timeout, params=params)

    def patch(self, url: str, headers=None, content=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("PATCH", url, headers, content, timeout=timeout, params=params)

    def delete(self, url: str, headers=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("DELETE", url, headers, timeout=timeout, params=params)

    def head(self, url: str, headers=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("HEAD", url, headers, timeout=timeout, params=params)

    def options(self, url: str, headers=None, *, timeout=None, params=None) -> FullResponse:
        return self.execute("OPTIONS", url, headers, timeout=timeout, params=params)
