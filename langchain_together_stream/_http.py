"""What the sync and async transports share: the request, response checks, retry bookkeeping.

Nothing here imports an HTTP client. Each transport reads the status, the headers and (for a
failure) at most `MAX_ERROR_BODY` bytes its own way, and these functions decide what they
mean, so both paths raise the same typed errors for the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from langchain_together_stream._retry import next_delay, server_delay
from langchain_together_stream._statuses import api_error_class
from langchain_together_stream._wire import parse_error_body
from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherCertificateError,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimitError,
    TogetherStreamError,
    TogetherTimeoutError,
)

READ_SIZE = 65536
"""The most bytes asked for in one read; reads return as soon as any bytes are there."""
MAX_ERROR_BODY = 65536
"""The most bytes of an error body read to find Together's message. The body is read to its
end (or to this size), however the server splits it, within one read timeout in all."""
_IDENTITY = frozenset({"", "identity"})


@dataclass(frozen=True)
class StreamRequest:
    """Everything needed to post one streaming completion request."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    # Error reporters (Sentry, rich, pytest --showlocals) print locals: keep the key out.
    api_key: str = field(repr=False)
    connect_timeout: float
    read_timeout: float
    max_retries: int
    max_event_bytes: int
    max_connections: int = 1000
    deadline: float | None = None
    """Seconds the whole call may take, retries and reading included; None for no limit."""
    verify: bool | str = True
    """TLS verification: on (the CAs `_egress.trust` picks), off, or a CA bundle path."""

    def headers_with_auth(self) -> dict[str, str]:
        """The headers plus the bearer key, built per request so the key sits in no pool.

        Returns:
            A fresh dict to send.
        """
        return {**self.headers, "Authorization": f"Bearer {self.api_key}"}


def is_event_stream(status: int, headers: Mapping[str, str]) -> bool:
    """Whether the response is a 2xx event stream, the only answer that is parsed.

    Args:
        status: The HTTP status.
        headers: The response headers (case-insensitive mapping).

    Returns:
        True when the body should go to the SSE decoder.
    """
    content_type = headers.get("content-type", "")
    ok = 200 <= status < 300  # noqa: PLR2004
    return ok and content_type.lower().lstrip().startswith("text/event-stream")


def encoding_error(headers: Mapping[str, str]) -> TogetherStreamError | None:
    """The error for an event stream sent compressed, which is never decoded.

    Requests ask for `Accept-Encoding: identity`; a compressed stream means something on the
    way (a proxy, a gateway) ignored that. Decoding it would hold tokens back until a
    compressed block fills, so it is refused by name instead of failing later as a stream
    that "ended without [DONE]".

    Args:
        headers: The response headers (case-insensitive mapping).

    Returns:
        A `TogetherStreamError` naming the encoding, or None for an identity body.
    """
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in _IDENTITY:
        return None
    request_id = headers.get("x-request-id") or headers.get("cf-ray") or None
    message = (
        f"The event stream came with Content-Encoding {encoding!r}, which is not decoded: "
        "this client asks for identity, so a proxy or gateway on the way compressed it."
    )
    return TogetherStreamError(message, request_id=request_id)


def wants_error_body(status: int) -> bool:
    """Whether to read the body of a rejected response before `response_error`.

    Args:
        status: The HTTP status.

    Returns:
        False for redirects, whose body says nothing useful.
    """
    return not 300 <= status < 400  # noqa: PLR2004


def response_error(
    status: int, reason: str | None, headers: Mapping[str, str], body: bytes
) -> TogetherError:
    """The typed error for a response that `is_event_stream` rejected.

    Args:
        status: The HTTP status.
        reason: The status line's reason phrase, if any.
        headers: The response headers (case-insensitive mapping).
        body: Up to `MAX_ERROR_BODY` bytes of the body (empty for redirects).

    Returns:
        A redirect error, an API error of the status's class, or a stream error for a 2xx
        that is not an event stream.
    """
    header_id = headers.get("x-request-id") or headers.get("cf-ray") or None
    if 300 <= status < 400:  # noqa: PLR2004
        location = headers.get("location", "?")
        message = (
            f"Together answered with a redirect to {location}; it is not followed, so the "
            "API key never goes to another address. Check base_url."
        )
        return TogetherAPIError(message, status_code=status, request_id=header_id)
    if status >= 400:  # noqa: PLR2004
        info = parse_error_body(body, fallback=f"{status} {reason or 'error'}".strip())
        error = api_error_class(status)(
            info.message,
            status_code=status,
            error_type=info.type,
            error_code=info.code,
            request_id=info.request_id or header_id,
        )
        if isinstance(error, TogetherRateLimitError):
            error.retry_after = server_delay(headers)
        return error
    content_type = headers.get("content-type", "")
    info = parse_error_body(body, fallback="")
    detail = f": {info.message}" if info.message else ""
    message = (
        f"Together answered {status} with Content-Type {content_type or 'none'!r} instead "
        f"of a text/event-stream{detail}"
    )
    return TogetherStreamError(
        message, error_type=info.type, request_id=info.request_id or header_id
    )


def certificate_error(exc: BaseException) -> TogetherCertificateError:
    """The error for a server certificate that failed verification, on either path.

    Args:
        exc: The client's exception.

    Returns:
        The typed error; raise it `from exc`.
    """
    return TogetherCertificateError(
        f"The server's TLS certificate is not trusted: {_describe(exc)}. If a proxy or a "
        "private CA signs it, pass verify='/path/to/ca-bundle.pem' (or set "
        "REQUESTS_CA_BUNDLE or SSL_CERT_FILE)."
    )


def transport_error(exc: BaseException, *, timed_out: bool) -> TogetherConnectionError:
    """The error for a failed, broken or timed-out connection of either HTTP client.

    Args:
        exc: The client's exception.
        timed_out: Whether it was a connect or idle-read timeout.

    Returns:
        The typed error; raise it `from exc`.
    """
    if timed_out:
        return TogetherTimeoutError(f"Timed out talking to Together: {_describe(exc)}")
    return TogetherConnectionError(f"The connection to Together failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Response(Protocol):
    """What `Attempts.after` needs of either client's response."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, case-insensitive."""

    def close(self) -> None:
        """Drop the connection."""


class Attempts:
    """One call's retries, waits and deadline; both transports ask it what to do next."""

    __slots__ = ("_attempt", "_deadline", "_expires_at", "_max_retries", "_waited")

    def __init__(self, max_retries: int, deadline: float | None = None) -> None:
        """Start before the first attempt.

        Args:
            max_retries: The configured bound.
            deadline: Seconds the whole call may take, or None.
        """
        self._max_retries = max_retries
        self._attempt = 0
        self._waited = 0.0
        self._deadline = deadline
        self._expires_at = None if deadline is None else time.monotonic() + deadline

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one.

        Returns:
            The time left.
        """
        if self._expires_at is None:
            return None
        return max(0.0, self._expires_at - time.monotonic())

    def capped(self, timeout: float) -> float:
        """A timeout no longer than the time left.

        Args:
            timeout: The configured timeout.

        Returns:
            The smaller of the two (a small positive floor, so a client never gets zero).
        """
        left = self.remaining()
        return timeout if left is None else max(0.001, min(timeout, left))

    def expired(self) -> bool:
        """Whether the deadline has passed.

        Returns:
            True once the call has used all its time.
        """
        return self._expires_at is not None and time.monotonic() >= self._expires_at

    def deadline_error(self, cause: TogetherError) -> TogetherError:
        """The error to raise for a failure caused by the deadline, else `cause` itself.

        Args:
            cause: What the transport saw (a timeout, or a socket shut by the deadline).

        Returns:
            A `TogetherTimeoutError` naming the deadline once it has passed, else `cause`.
        """
        if not self.expired():
            return cause
        error = self.timeout()
        error.__cause__ = cause
        return error

    def timeout(self) -> TogetherTimeoutError:
        """The error for a call that ran out of time.

        Returns:
            A `TogetherTimeoutError` naming the deadline.
        """
        return TogetherTimeoutError(
            f"The call took longer than its deadline of {self._deadline} s."
        )

    def after(self, error: TogetherError, response: Response | None) -> float:
        """Close a failed attempt's response and say how long to wait before the next one.

        Called in the `except` clause of an attempt that failed before any event.

        Args:
            error: What the attempt ended with.
            response: The failed response, if there was one.

        Returns:
            Seconds to sleep before the next attempt.

        Raises:
            TogetherError: `error` itself (or the deadline's error), when it must not be
                retried or the wait would run past the deadline.
        """
        headers = None
        if response is not None:
            headers = response.headers
            response.close()
        delay = next_delay(
            error,
            attempt=self._attempt,
            max_retries=self._max_retries,
            waited=self._waited,
            headers=headers,
        )
        left = self.remaining()
        if delay is None or (left is not None and delay >= left):
            raise self.deadline_error(error)
        self._attempt += 1
        self._waited += delay
        return delay
