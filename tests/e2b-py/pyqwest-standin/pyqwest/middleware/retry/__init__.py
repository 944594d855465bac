"""Retrying transports with the hooks pyqwest's retry middleware has.

``should_retry_request`` decides whether (and how) a request may be retried:
``RetryMode.BUFFERED`` keeps a streamed body in memory so it can be replayed
after a failure or a retryable response; ``UNBUFFERED`` leaves it as it is, so
only failures before anything was sent (ConnectionError) are retried;
``None``/False disables retries. ``should_retry_response`` sees the response or
the exception of each attempt. Backoff: exponential with jitter, or the
response's Retry-After when it gives one.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from email.utils import parsedate_to_datetime
from http import HTTPStatus

from ..._types import Request, Response, SyncRequest, SyncResponse

__all__ = ["RetryMode", "RetryTransport", "SyncRetryTransport"]

_IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")


class RetryMode(enum.Enum):
    BUFFERED = "buffered"
    UNBUFFERED = "unbuffered"


def _mode(value) -> RetryMode | None:
    if isinstance(value, RetryMode):
        return value
    return RetryMode.BUFFERED if value else None


def _retry_after(response) -> float | None:
    if isinstance(response, Exception):
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - when.now(when.tzinfo)).total_seconds())


class _Policy:
    def __init__(self, initial_interval, randomization_factor, multiplier, max_interval, max_retries) -> None:
        self._initial = initial_interval
        self._jitter = randomization_factor
        self._multiplier = multiplier
        self._max_interval = max_interval
        self._max_retries = max_retries

    def delays(self):
        interval = self._initial
        for _ in range(self._max_retries):
            spread = interval * self._jitter
            yield random.uniform(interval - spread, interval + spread)
            interval = min(interval * self._multiplier, self._max_interval)

    def should_retry_request(self, request) -> RetryMode | bool | None:
        return RetryMode.BUFFERED if request.method in _IDEMPOTENT else RetryMode.UNBUFFERED

    def should_retry_response(self, request, response) -> bool:
        if isinstance(response, ConnectionError):
            return True
        if request.method not in _IDEMPOTENT:
            return False
        if isinstance(response, Exception):
            return True
        return response.status == HTTPStatus.TOO_MANY_REQUESTS or (
            response.status >= 500 and response.status != HTTPStatus.NOT_IMPLEMENTED
        )

    def _delay(self, mode: RetryMode, request, outcome, delays) -> float | None:
        """Seconds to wait before the next attempt, or None to settle on this outcome."""
        # Unbuffered: the body may be half-sent, so only pre-send failures.
        allowed = mode is RetryMode.BUFFERED or isinstance(outcome, ConnectionError)
        if not (allowed and self.should_retry_response(request, outcome)):
            return None
        delay = next(delays, None)
        if delay is not None and not isinstance(outcome, Exception):
            delay = _retry_after(outcome) or delay
        return delay


class RetryTransport(_Policy):
    def __init__(self, transport, initial_interval=0.5, randomization_factor=0.5, multiplier=1.5, max_interval=60.0, max_retries=4):
        super().__init__(initial_interval, randomization_factor, multiplier, max_interval, max_retries)
        self._transport = transport

    async def execute(self, request: Request) -> Response:
        mode = _mode(self.should_retry_request(request))
        if mode is None:
            return await self._transport.execute(request)
        if mode is RetryMode.BUFFERED and not isinstance(request.content, (bytes, type(None))):
            body = bytearray()
            async for chunk in request.content:
                body.extend(chunk)
            request = Request(request.method, request.url, request.headers, bytes(body))
        delays = self.delays()
        while True:
            try:
                outcome = await self._transport.execute(request)
            except Exception as e:
                outcome = e
            delay = self._delay(mode, request, outcome, delays)
            if delay is None:
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
            if not isinstance(outcome, Exception):
                await outcome.aclose()
            await asyncio.sleep(delay)


class SyncRetryTransport(_Policy):
    def __init__(self, transport, initial_interval=0.5, randomization_factor=0.5, multiplier=1.5, max_interval=60.0, max_retries=4):
        super().__init__(initial_interval, randomization_factor, multiplier, max_interval, max_retries)
        self._transport = transport

    def execute_sync(self, request: SyncRequest) -> SyncResponse:
        mode = _mode(self.should_retry_request(request))
        if mode is None:
            return self._transport.execute_sync(request)
        if mode is RetryMode.BUFFERED and not isinstance(request.content, (bytes, type(None))):
            request = SyncRequest(request.method, request.url, request.headers, b"".join(request.content))
        delays = self.delays()
        while True:
            try:
                outcome = self._transport.execute_sync(request)
            except Exception as e:
                outcome = e
            delay = self._delay(mode, request, outcome, delays)
            if delay is None:
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
            if not isinstance(outcome, Exception):
                outcome.close()
            time.sleep(delay)
