"""Everything this package raises.

```
TogetherError                         root; every error has .partial_text
├── TogetherConfigurationError        bad settings or call arguments, raised before any request
├── TogetherAPIError                  a non-2xx answer (or a redirect, which is never followed)
│   ├── TogetherAuthenticationError   401, 403
│   ├── TogetherBadRequestError       400, 404, 422 (also a ValueError)
│   ├── TogetherRateLimitError        429 (.retry_after)
│   └── TogetherServerError           5xx
├── TogetherConnectionError           the connection failed or broke (also a ConnectionError)
│   ├── TogetherCertificateError      the server's TLS certificate is not trusted (not retried)
│   └── TogetherTimeoutError          connect or idle-read timeout (also a TimeoutError)
└── TogetherStreamError               a 200 whose stream is broken: an error event, bad JSON,
                                      invalid UTF-8, an oversized event, no [DONE], not SSE
```

Errors also subclass the built-in they resemble, as `requests` does, so existing
`except ValueError` / `except TimeoutError` clauses keep working.
Which status raises which class, and whether it is retried, is one table:
`_statuses.STATUSES`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TogetherAPIError",
    "TogetherAuthenticationError",
    "TogetherBadRequestError",
    "TogetherCertificateError",
    "TogetherConfigurationError",
    "TogetherConnectionError",
    "TogetherError",
    "TogetherRateLimitError",
    "TogetherServerError",
    "TogetherStreamError",
    "TogetherTimeoutError",
]


class TogetherError(Exception):
    """Root of every error this package raises.

    Attributes:
        partial_text: The text streamed to the caller before the failure ("" if none), so a
            failure never loses what was already generated.
    """

    def __init__(self, message: str, *, partial_text: str = "") -> None:
        """Create the error.

        Args:
            message: What went wrong, for people.
            partial_text: Text streamed before the failure.
        """
        super().__init__(message)
        self.message = message
        self.partial_text = partial_text

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by attributes, so errors with keyword-only arguments cross process pools.

        `BaseException` pickles `args` only and calls `cls(*args)` on load, which fails for
        every subclass that requires a keyword argument (`status_code`).
        """
        return (_restore, (type(self), self.__dict__.copy()))


class TogetherConfigurationError(TogetherError):
    """The settings or call arguments cannot work; raised before anything is sent.

    It is deliberately not a `ValueError`: pydantic would wrap a `ValueError` raised during
    construction into its own `ValidationError`, hiding this type.
    """


class TogetherAPIError(TogetherError):
    """Together answered with a status other than 2xx.

    Attributes:
        status_code: The HTTP status.
        error_type: `error.type` from Together's envelope, if any.
        error_code: `error.code` from Together's envelope, if any.
        request_id: The request id (body `id`, `x-request-id` or `cf-ray`), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        partial_text: str = "",
    ) -> None:
        """Create the error.

        Args:
            message: The message from Together's body, or a description of the status.
            status_code: The HTTP status.
            error_type: `error.type` from the body.
            error_code: `error.code` from the body.
            request_id: Together's request id.
            partial_text: Text streamed before the failure.
        """
        super().__init__(message, partial_text=partial_text)
        self.status_code = status_code
        self.error_type = error_type
        self.error_code = error_code
        self.request_id = request_id

    def __str__(self) -> str:
        """Status, type and message on one line."""
        kind = f" {self.error_type}" if self.error_type else ""
        request = f" (request {self.request_id})" if self.request_id else ""
        return f"HTTP {self.status_code}{kind}: {self.message}{request}"


class TogetherAuthenticationError(TogetherAPIError):
    """The API key is missing, wrong or not allowed to do this (401, 403)."""


class TogetherBadRequestError(TogetherAPIError, ValueError):
    """Together rejected the request itself (400, 404, 422); retrying will not help."""


class TogetherRateLimitError(TogetherAPIError):
    """Too many requests or tokens (429).

    Attributes:
        retry_after: Seconds Together suggested waiting, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        error_type: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        partial_text: str = "",
        retry_after: float | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: The message from Together's body.
            status_code: The HTTP status (429).
            error_type: `error.type` from the body.
            error_code: `error.code` from the body.
            request_id: Together's request id.
            partial_text: Text streamed before the failure.
            retry_after: Seconds Together suggested waiting.
        """
        super().__init__(
            message,
            status_code=status_code,
            error_type=error_type,
            error_code=error_code,
            request_id=request_id,
            partial_text=partial_text,
        )
        self.retry_after = retry_after


class TogetherServerError(TogetherAPIError):
    """Together failed or is overloaded (5xx)."""


class TogetherConnectionError(TogetherError, ConnectionError):
    """The connection could not be made, or broke before the stream ended."""


class TogetherCertificateError(TogetherConnectionError):
    """The server's TLS certificate failed verification (unknown CA, wrong host, expired).

    Never retried: the same certificate will fail the same way. A proxy or a private CA that
    signs it is trusted through the `verify` setting or `REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE`.
    """


class TogetherTimeoutError(TogetherConnectionError, TimeoutError):
    """No connection within the connect timeout, or no byte within the idle-read timeout."""


class TogetherStreamError(TogetherError):
    """The response was a 200 but its stream is not a complete, well-formed completion.

    Attributes:
        error_type: `error.type` when the stream carried an error object, else None.
        request_id: Together's request id, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        request_id: str | None = None,
        partial_text: str = "",
    ) -> None:
        """Create the error.

        Args:
            message: What was wrong with the stream.
            error_type: `error.type` of an error object in the stream.
            request_id: Together's request id.
            partial_text: Text streamed before the failure.
        """
        super().__init__(message, partial_text=partial_text)
        self.error_type = error_type
        self.request_id = request_id


def _restore(cls: type[TogetherError], state: dict[str, Any]) -> TogetherError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error
