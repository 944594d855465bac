"""A pure-Python stand-in for pyqwest 0.10 (a Rust/reqwest HTTP client), covering
the API the E2B Python SDK 2.45 and connectrpc 0.11 use, on httpx/httpcore.

Written for Stockade's E2B Python SDK runner (tests/e2b-py/run.sh), not a
general replacement: see _transport.py for what it does and does not do.
"""

from ._headers import Headers
from ._transport import (
    Client,
    HTTPTransport,
    SyncClient,
    SyncHTTPTransport,
    SyncTransport,
    Transport,
    get_default_sync_transport,
    get_default_transport,
)
from ._types import (
    ConnectTimeout,
    FullResponse,
    HTTPVersion,
    Proxy,
    ReadError,
    RemoteProtocolError,
    Request,
    Response,
    StreamError,
    StreamErrorCode,
    SyncRequest,
    SyncResponse,
    TooManyRedirects,
    WriteError,
)

__all__ = [
    "Client",
    "ConnectTimeout",
    "FullResponse",
    "HTTPTransport",
    "HTTPVersion",
    "Headers",
    "Proxy",
    "ReadError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "StreamError",
    "StreamErrorCode",
    "SyncClient",
    "SyncHTTPTransport",
    "SyncRequest",
    "SyncResponse",
    "SyncTransport",
    "TooManyRedirects",
    "Transport",
    "WriteError",
    "get_default_sync_transport",
    "get_default_transport",
]
