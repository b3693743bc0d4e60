"""Synchronous HTTP; the only module that imports requests or urllib3.

One pooled `requests.Session` per `TogetherLLM`. Each call posts once (plus retries before
the first event), checks the status and `Content-Type` before parsing anything, reads raw
bytes as they arrive with urllib3's `read1` (never `iter_content`, which waits for a full
buffer when the server does not use chunked encoding), and closes the response in `finally`
so an early exit drops the connection at once and Together stops generating.

A deadline is kept by a timer that shuts the call's socket when it passes, which wakes any
read blocked on it: the pool's connections hand their socket to the call's watch as soon as it
exists and whenever a request starts on it, so the status line, the headers, an error body and
the stream are all covered, not just the stream.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Generator, Iterator
from time import monotonic
from typing import Any

import requests
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from langchain_together_stream._egress import DEFAULT, proxy_for, trust
from langchain_together_stream._http import (
    MAX_ERROR_BODY,
    READ_SIZE,
    Attempts,
    StreamRequest,
    certificate_error,
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


class _DeadlineWatch:
    """Shuts the socket of one call when the call's deadline passes."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        # A duplicate descriptor of the call's socket: shutting it shuts the connection, it
        # stays valid when TLS wraps (detaches) the original, and it is never reused by
        # another socket while held, so a late timer cannot hit a stranger.
        self._sock: socket.socket | None = None
        self._fired = False
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, sock: socket.socket) -> None:
        """Watch `sock` from now on (a fired watch shuts it at once)."""
        with self._lock:
            if self._done:
                return
            self._close_dup()
            try:
                duplicate = os.dup(sock.fileno())
            except OSError:
                return  # already closed: the request on it fails by itself
            self._sock = socket.socket(sock.family, sock.type, sock.proto, duplicate)
            if self._fired:
                _shutdown(self._sock)

    def detach(self) -> None:
        """Stop watching the current socket (its connection goes back to the pool)."""
        with self._lock:
            self._close_dup()

    def cancel(self) -> None:
        """End the watch: the call is over."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._close_dup()

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            if self._sock is not None and not self._done:
                _shutdown(self._sock)

    def _close_dup(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_posting = threading.local()
"""`watch`: the deadline watch of the call this thread is posting, if it has a deadline."""


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """Hands its socket to the posting call's deadline watch."""

    deadline_watch: _DeadlineWatch | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._watch(sock)  # before any TLS handshake, which the deadline covers too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a pooled connection, already open
            self._watch(self.sock)
        super().request(*args, **kwargs)

    def _watch(self, sock: socket.socket) -> None:
        watch: _DeadlineWatch | None = getattr(_posting, "watch", None)
        if watch is not None:
            watch.attach(sock)
            self.deadline_watch = watch


class _WatchedHTTPSConnection(_WatchedHTTPConnection, urllib3.connection.HTTPSConnection):
    """`_WatchedHTTPConnection` over TLS."""


def _put_back(conn: object) -> None:
    # A connection returned to the pool belongs to no call: its watch must let it go before
    # another call can take it.
    if isinstance(conn, _WatchedHTTPConnection) and conn.deadline_watch is not None:
        conn.deadline_watch.detach()
        conn.deadline_watch = None


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _put_back(conn)
        super()._put_conn(conn)


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _put_back(conn)
        super()._put_conn(conn)


_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with the watched connection pools, direct and through a proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have classes of their own
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


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
                # CAs and proxies come from `_egress`, the policy both paths share; requests'
                # own reading of the environment (and of ~/.netrc) is switched off.
                session.trust_env = False
                adapter = _Adapter(pool_connections=1, pool_maxsize=max_connections)
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
        left = attempts.remaining()
        watch = None if left is None else _DeadlineWatch(left)
        try:
            while True:
                response: requests.Response | None = None
                try:
                    response = self._post(request, attempts, watch)
                    _check_response(response, attempts.capped(request.read_timeout))
                    events = iter_events(
                        self._read(response, attempts), max_event_bytes=request.max_event_bytes
                    )
                    first = next(events, None)
                    break
                except TogetherError as error:
                    time.sleep(attempts.after(error, response))
                except BaseException:
                    if response is not None:
                        response.close()
                    raise
            try:
                if first is not None:
                    yield first
                    yield from events
            finally:
                # After a complete body urllib3 has already returned the connection to the
                # pool, so this only closes the socket when the caller stopped early.
                response.close()
        finally:
            if watch is not None:
                watch.cancel()

    def _post(
        self, request: StreamRequest, attempts: Attempts, watch: _DeadlineWatch | None
    ) -> requests.Response:
        _posting.watch = watch
        try:
            with _mapped_errors():
                return self._send(request, attempts)
        finally:
            _posting.watch = None

    def _send(self, request: StreamRequest, attempts: Attempts) -> requests.Response:
        trusted = trust(request.url, request.verify)
        proxy = proxy_for(request.url)
        return self.session(request.max_connections).post(
            request.url,
            verify=True if trusted == DEFAULT else trusted,
            proxies={} if proxy is None else {"http": proxy, "https": proxy},
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
                # Not decoded: a compressed stream was refused with the headers, and urllib3's
                # decoding buffer costs a copy and several calls per HTTP chunk.
                while chunk := read1(READ_SIZE, decode_content=False):
                    yield chunk
        except TogetherConnectionError as error:
            raise attempts.deadline_error(error) from error.__cause__
        if attempts.expired():
            # The deadline watch shut the socket: the body did not end, the time did.
            raise attempts.timeout()


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
    if _is_certificate_failure(exc):
        return certificate_error(exc)
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return transport_error(exc, timed_out=True)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return TogetherConfigurationError(f"Invalid base_url: {exc}")
    return transport_error(exc, timed_out=False)


def _is_certificate_failure(exc: BaseException) -> bool:
    # requests wraps urllib3's MaxRetryError, which wraps urllib3's SSLError, which wraps
    # the ssl module's verification error: follow causes, reasons and arguments down.
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += current.args
    return False


def _redact_request(exc: Exception) -> None:
    """Blank the key in the request a requests exception keeps, since it becomes our cause."""
    headers = getattr(getattr(exc, "request", None), "headers", None)
    if headers is not None and "Authorization" in headers:
        headers["Authorization"] = "Bearer [redacted]"
