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
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from langchain_together_stream._retry import next_delay, server_delay
from langchain_together_stream._sse import SSEEvent, iter_events
from langchain_together_stream._wire import parse_error_body
from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimitError,
    TogetherStreamError,
    TogetherTimeoutError,
    api_error_class,
)

_READ_SIZE = 65536
_MAX_ERROR_BODY = 65536


@dataclass(frozen=True)
class StreamRequest:
    """Everything needed to post one streaming completion request."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    api_key: str
    connect_timeout: float
    read_timeout: float
    max_retries: int
    max_event_bytes: int


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

    def __init__(self, *, pool_size: int = 10) -> None:
        """Create the transport; no connection is made until the first request.

        Args:
            pool_size: How many idle connections to keep for reuse.
        """
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = os.getpid()

    def __reduce__(self) -> tuple[type[SyncTransport], tuple[()], dict[str, int]]:
        """Pickle the settings, never the live connections."""
        return (SyncTransport, (), {"_pool_size": self._pool_size})

    def __setstate__(self, state: dict[str, int]) -> None:
        """Restore the settings after unpickling."""
        self._pool_size = state["_pool_size"]

    def session(self) -> requests.Session:
        """The pool, created on first use and again in a forked child.

        Returns:
            The session for this process.
        """
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size)
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
        attempt, waited = 0, 0.0
        while True:
            response: requests.Response | None = None
            try:
                response = self._post(request)
                _check_response(response)
                events = iter_events(self._read(response), max_event_bytes=request.max_event_bytes)
                first = next(events, None)
                break
            except TogetherError as error:
                headers = response.headers if response is not None else None
                if response is not None:
                    response.close()
                delay = next_delay(
                    error,
                    attempt=attempt,
                    max_retries=request.max_retries,
                    waited=waited,
                    headers=headers,
                )
                if delay is None:
                    raise
                time.sleep(delay)
                attempt, waited = attempt + 1, waited + delay
        assert response is not None  # the loop only breaks after a successful post
        try:
            if first is not None:
                yield first
                yield from events
        finally:
            # After a complete body urllib3 has already returned the connection to the pool,
            # so this only closes the socket when the caller stopped early.
            response.close()

    def _post(self, request: StreamRequest) -> requests.Response:
        with _mapped_errors():
            return self.session().post(
                request.url,
                data=request.body,
                headers=dict(request.headers),
                auth=_BearerAuth(request.api_key),
                timeout=(request.connect_timeout, request.read_timeout),
                stream=True,
                allow_redirects=False,
            )

    @staticmethod
    def _read(response: requests.Response) -> Iterator[bytes]:
        read1 = response.raw.read1
        with _mapped_errors():
            while chunk := read1(_READ_SIZE):
                yield chunk


def _check_response(response: requests.Response) -> None:
    status = response.status_code
    if 300 <= status < 400:  # noqa: PLR2004
        location = response.headers.get("location", "?")
        message = (
            f"Together answered with a redirect to {location}; it is not followed, so the "
            "API key never goes to another address. Check base_url."
        )
        raise TogetherAPIError(message, status_code=status, request_id=_request_id(response))
    if status >= 400:  # noqa: PLR2004
        _raise_for_status(response)
    content_type = response.headers.get("content-type", "")
    if not content_type.lower().lstrip().startswith("text/event-stream"):
        body = _read_error_body(response)
        info = parse_error_body(body, fallback="")
        detail = f": {info.message}" if info.message else ""
        message = (
            f"Together answered {status} with Content-Type {content_type or 'none'!r} instead "
            f"of a text/event-stream{detail}"
        )
        raise TogetherStreamError(
            message, error_type=info.type, request_id=info.request_id or _request_id(response)
        )


def _raise_for_status(response: requests.Response) -> NoReturn:
    status = response.status_code
    fallback = f"{status} {response.reason or 'error'}".strip()
    info = parse_error_body(_read_error_body(response), fallback=fallback)
    error_class = api_error_class(status)
    request_id = info.request_id or _request_id(response)
    if error_class is TogetherRateLimitError:
        raise TogetherRateLimitError(
            info.message,
            status_code=status,
            error_type=info.type,
            error_code=info.code,
            request_id=request_id,
            retry_after=server_delay(response.headers),
        )
    raise error_class(
        info.message,
        status_code=status,
        error_type=info.type,
        error_code=info.code,
        request_id=request_id,
    )


def _read_error_body(response: requests.Response) -> bytes:
    with contextlib.suppress(TogetherError), _mapped_errors():
        return response.raw.read(_MAX_ERROR_BODY) or b""
    return b""


def _request_id(response: requests.Response) -> str | None:
    headers = response.headers
    return headers.get("x-request-id") or headers.get("cf-ray") or None


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Translate every requests/urllib3/socket failure into the package's own errors."""
    try:
        yield
    except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        msg = f"Timed out talking to Together: {_describe(exc)}"
        raise TogetherTimeoutError(msg) from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        msg = f"Invalid base_url: {exc}"
        raise TogetherConfigurationError(msg) from exc
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
    ) as exc:
        msg = f"The connection to Together failed: {_describe(exc)}"
        raise TogetherConnectionError(msg) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
