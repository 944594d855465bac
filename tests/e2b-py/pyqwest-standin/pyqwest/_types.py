"""Requests, responses and errors with the constructors and properties the E2B
SDK and connectrpc use (pyqwest 0.10 API).

A response's content is an iterator of byte chunks; closing a response before
its content is drained releases the underlying connection (HTTP/1.1: the
connection is dropped, which is how a server sees a stream abandoned).
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Awaitable
from urllib.parse import quote

from ._headers import Headers


class StreamErrorCode(enum.IntEnum):
    # HTTP/2 RST_STREAM codes (RFC 9113 section 7). The stand-in speaks
    # HTTP/1.1 to plaintext servers, so it never raises StreamError itself;
    # connectrpc still matches on these names.
    NO_ERROR = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2
    FLOW_CONTROL_ERROR = 3
    SETTINGS_TIMEOUT = 4
    STREAM_CLOSED = 5
    FRAME_SIZE_ERROR = 6
    REFUSED_STREAM = 7
    CANCEL = 8
    COMPRESSION_ERROR = 9
    CONNECT_ERROR = 10
    ENHANCE_YOUR_CALM = 11
    INADEQUATE_SECURITY = 12
    HTTP_1_1_REQUIRED = 13


class RemoteProtocolError(Exception):
    """The peer broke the HTTP protocol (e.g. closed mid-response)."""


class StreamError(RemoteProtocolError):
    def __init__(self, message: str, code: StreamErrorCode | int) -> None:
        super().__init__(message)
        self.code = StreamErrorCode(code)


class ConnectTimeout(ConnectionError, TimeoutError):
    """Connecting took longer than the transport's connect timeout."""


class ReadError(Exception):
    """Reading the response failed after the connection was up."""


class WriteError(Exception):
    """Writing the request failed after the connection was up."""


class TooManyRedirects(Exception):
    pass


class HTTPVersion(enum.Enum):
    HTTP1 = "HTTP/1.1"
    HTTP2 = "HTTP/2"
    HTTP3 = "HTTP/3"


class Proxy:
    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        no_proxy: str | None = None,
        scheme: str | None = None,
    ) -> None:
        if no_proxy is not None or scheme is not None:
            raise NotImplementedError("the pyqwest stand-in proxies every request (no no_proxy/scheme rules)")
        self.url = url
        self.auth = auth
        self.headers = Headers(headers)


def with_params(url: str, params: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None) -> str:
    """Append query parameters; a None value is a key without '='."""
    if not params:
        return url
    pairs = params.items() if isinstance(params, Mapping) else params
    query = "&".join(quote(k, safe="") if v is None else f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return f"{url}{'&' if '?' in url else '?'}{query}"


def encode_content(content: Any, headers: Headers) -> Any:
    """A dict body is sent as JSON (pyqwest's convenience); bytes-like and
    iterators pass through."""
    if isinstance(content, dict):
        headers.setdefault("content-type", "application/json")
        return json.dumps(content).encode()
    if isinstance(content, (bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, str):
        return content.encode()
    return content


class Request:
    def __init__(self, method: str, url: str, headers: Headers | None = None, content: Any = None, *, params=None) -> None:
        self._method = method.upper()
        self._headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._url = with_params(url, params)
        self._content = encode_content(content, self._headers)

    @property
    def method(self) -> str:
        return self._method

    @property
    def url(self) -> str:
        return self._url

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def content(self) -> Any:
        return self._content


class SyncRequest(Request):
    pass


async def _once_async(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _once(data: bytes) -> Iterator[bytes]:
    if data:
        yield data


class _ResponseBase:
    """What the async and sync responses share; content and closing differ."""

    def __init__(self, status: int, http_version, headers, content, trailers, close) -> None:
        if not 100 <= status <= 999:
            raise RemoteProtocolError(f"invalid HTTP status {status}")
        self._status = status
        self._http_version = http_version or HTTPVersion.HTTP1
        self._headers = headers if headers is not None else Headers()
        self._content = content
        # HTTP/1.1 responses from httpcore carry no trailers.
        self._trailers = trailers if trailers is not None else Headers()
        self._close = close

    @property
    def status(self) -> int:
        return self._status

    @property
    def http_version(self) -> HTTPVersion:
        return self._http_version

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def trailers(self) -> Headers:
        return self._trailers

    def _take_close(self):
        close, self._close = self._close, None
        return close


class Response(_ResponseBase):
    def __init__(
        self,
        *,
        status: int,
        http_version: HTTPVersion | None = None,
        headers: Headers | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        trailers: Headers | None = None,
        _close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if content is None or isinstance(content, (bytes, bytearray, memoryview)):
            content = _once_async(bytes(content or b""))
        super().__init__(status, http_version, headers, content, trailers, _close)

    async def __aenter__(self) -> "Response":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def content(self) -> AsyncIterator[bytes]:
        return self._content

    async def aclose(self) -> None:
        if (close := self._take_close()) is not None:
            await close()


class SyncResponse(_ResponseBase):
    def __init__(
        self,
        *,
        status: int,
        http_version: HTTPVersion | None = None,
        headers: Headers | None = None,
        content: bytes | Iterator[bytes] | None = None,
        trailers: Headers | None = None,
        _close: Callable[[], None] | None = None,
    ) -> None:
        if content is None or isinstance(content, (bytes, bytearray, memoryview)):
            content = _once(bytes(content or b""))
        super().__init__(status, http_version, headers, content, trailers, _close)

    def __enter__(self) -> "SyncResponse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def content(self) -> Iterator[bytes]:
        return self._content

    def close(self) -> None:
        if (close := self._take_close()) is not None:
            close()


class FullResponse:
    def __init__(self, *, status: int, headers: Headers, content: bytes, trailers: Headers | None = None) -> None:
        self._status = status
        self._headers = headers
        self._content = content
        self._trailers = trailers if trailers is not None else Headers()

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def trailers(self) -> Headers:
        return self._trailers

    def text(self) -> str:
        return self._content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self._content)
