"""Synchronous HTTP; the only module that imports requests or urllib3.

One pooled `requests.Session` per `TogetherLLM`. Each call posts once (plus retries before
the first event), checks the status and `Content-Type` before parsing anything, reads raw
bytes as they arrive with urllib3's `read1` (never `iter_content`, which waits for a full
buffer when the server does not use chunked encoding), and closes the response in `finally`
so an early exit drops the connection at once and Together stops generating.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Generator, Iterator
from time import monotonic

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from langchain_together_stream._http import (
    MAX_ERROR_BODY,
    READ_SIZE,
    Attempts,
    StreamRequest,
    encoding_error,
    is_event_stream,
    response_error,
    transport_error,
    wants_error_body,
)
from langchain_together_stream._sse import SSEEvent, iter_events
from langchain_together_stream.errors import (
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherError,
)


class _BearerAuth(requests.auth.AuthBase):
    """Sets the key per request; passing auth also stops requests from consulting ~/.netrc."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


class SyncTransport:
    """A lazily created, fork-aware connection pool; pickles as an empty pool."""

    def __init__(self) -> None:
        """Create the transport; no connection is made until the first request."""
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = os.getpid()

    def __reduce__(self) -> tuple[type[SyncTransport], tuple[()]]:
        """Pickle an empty pool, never the live connections."""
        return (SyncTransport, ())

    def session(self, max_connections: int) -> requests.Session:
        """The pool, created on first use and again in a forked child.

        Args:
            max_connections: How many connections the pool keeps for reuse (threads beyond
                it still connect, but their connections are not kept).

        Returns:
            The session for this process.
        """
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                self._session, self._pid = session, os.getpid()
            return self._session

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def stream_events(self, request: StreamRequest) -> Generator[SSEEvent, None, None]:
        """Post the request and yield its events as they arrive.

        Failures before the first event are retried with backoff (see `_retry`); after the
        first event nothing is retried, because the caller already has part of the answer.

        Args:
            request: What to send.

        Yields:
            Each SSE event with data.

        Raises:
            TogetherError: A typed error for every failure.
        """
        attempts = Attempts(request.max_retries, request.deadline)
        while True:
            response: requests.Response | None = None
            watchdog: threading.Timer | None = None
            try:
                response = self._post(request, attempts)
                _check_response(response, attempts.capped(request.read_timeout))
                watchdog = _watchdog(response, attempts.remaining())
                events = iter_events(
                    self._read(response, attempts), max_event_bytes=request.max_event_bytes
                )
                first = next(events, None)
                break
            except TogetherError as error:
                if watchdog is not None:
                    watchdog.cancel()
                time.sleep(attempts.after(error, response))
        assert response is not None  # the loop only breaks after a successful post
        try:
            if first is not None:
                yield first
                yield from events
        finally:
            if watchdog is not None:
                watchdog.cancel()
            # After a complete body urllib3 has already returned the connection to the pool,
            # so this only closes the socket when the caller stopped early.
            response.close()

    def _post(self, request: StreamRequest, attempts: Attempts) -> requests.Response:
        with _mapped_errors():
            return self.session(request.max_connections).post(
                request.url,
                data=request.body,
                headers=dict(request.headers),
                auth=_BearerAuth(request.api_key),
                timeout=(
                    attempts.capped(request.connect_timeout),
                    attempts.capped(request.read_timeout),
                ),
                stream=True,
                allow_redirects=False,
            )

    @staticmethod
    def _read(response: requests.Response, attempts: Attempts) -> Iterator[bytes]:
        read1 = response.raw.read1
        try:
            with _mapped_errors():
                while chunk := read1(READ_SIZE):
                    yield chunk
        except TogetherConnectionError as error:
            raise attempts.deadline_error(error) from error.__cause__
        if attempts.expired():
            # The watchdog shut the socket: the body did not end, the time did.
            raise attempts.timeout()


def _watchdog(response: requests.Response, seconds: float | None) -> threading.Timer | None:
    """With a deadline, shut the socket when it passes; that wakes a read blocked on it."""
    if seconds is None:
        return None
    timer = threading.Timer(seconds, response.raw.shutdown)
    timer.daemon = True
    timer.start()
    return timer


def _check_response(response: requests.Response, body_seconds: float) -> None:
    status, headers = response.status_code, response.headers
    if not is_event_stream(status, headers):
        body = _read_error_body(response, body_seconds) if wants_error_body(status) else b""
        raise response_error(status, response.reason, headers, body)
    if (error := encoding_error(headers)) is not None:
        raise error


def _read_error_body(response: requests.Response, seconds: float) -> bytes:
    """Up to `MAX_ERROR_BODY` bytes, read until the body ends or `seconds` have passed.

    A body dripped a byte at a time never trips the idle timeout, hence the overall bound; a
    broken or cut body keeps what arrived, since its status already says what went wrong.
    """
    until = monotonic() + seconds
    body = bytearray()
    read1 = response.raw.read1
    with contextlib.suppress(TogetherError), _mapped_errors():
        while len(body) < MAX_ERROR_BODY and monotonic() < until:
            chunk = read1(MAX_ERROR_BODY - len(body))
            if not chunk:
                break
            body += chunk
    return bytes(body)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Translate every requests/urllib3/socket failure into the package's own errors."""
    try:
        yield
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        _redact_request(exc)
        raise _mapped(exc) from exc


def _mapped(exc: Exception) -> TogetherError:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return transport_error(exc, timed_out=True)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return TogetherConfigurationError(f"Invalid base_url: {exc}")
    return transport_error(exc, timed_out=False)


def _redact_request(exc: Exception) -> None:
    """Blank the key in the request a requests exception keeps, since it becomes our cause."""
    headers = getattr(getattr(exc, "request", None), "headers", None)
    if headers is not None and "Authorization" in headers:
        headers["Authorization"] = "Bearer [redacted]"
