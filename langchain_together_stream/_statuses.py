"""What each HTTP status Together answers with means: the error class, and whether to retry.

The one table both transports (through `_http.response_error`), the retry policy and the tests
read. A status not listed falls back by range: other 5xx are `TogetherServerError`, not
retried; other 4xx are `TogetherAPIError`, not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherRateLimitError,
    TogetherServerError,
)


@dataclass(frozen=True, slots=True)
class Status:
    """What one status means."""

    error_class: type[TogetherAPIError]
    """The error raised for it."""
    retryable: bool
    """Whether a request that failed with it before its first event is tried again (a 429
    whose type says the credit ran out is not, whatever this says; see `_retry`)."""
    documented: bool = True
    """Whether Together's documentation lists it (the tests and the README's failure table
    cover exactly these); False for statuses only proxies are known to send."""


STATUSES = MappingProxyType(
    {
        400: Status(TogetherBadRequestError, retryable=False),
        401: Status(TogetherAuthenticationError, retryable=False),
        402: Status(TogetherAPIError, retryable=False),
        403: Status(TogetherAuthenticationError, retryable=False),
        404: Status(TogetherBadRequestError, retryable=False),
        408: Status(TogetherAPIError, retryable=True, documented=False),
        409: Status(TogetherAPIError, retryable=True, documented=False),
        422: Status(TogetherBadRequestError, retryable=False),
        429: Status(TogetherRateLimitError, retryable=True),
        500: Status(TogetherServerError, retryable=True),
        502: Status(TogetherServerError, retryable=True),
        503: Status(TogetherServerError, retryable=True),
        504: Status(TogetherServerError, retryable=True),
    }
)
"""Every status Together documents, the retried 408 and 409, and what each means."""

_OTHER_SERVER_ERROR = Status(TogetherServerError, retryable=False)
_OTHER_CLIENT_ERROR = Status(TogetherAPIError, retryable=False)


def status_meaning(status_code: int) -> Status:
    """What a non-2xx status means.

    Args:
        status_code: The HTTP status.

    Returns:
        Its entry in `STATUSES`, else the fallback for its range.
    """
    meaning = STATUSES.get(status_code)
    if meaning is not None:
        return meaning
    return _OTHER_SERVER_ERROR if status_code >= 500 else _OTHER_CLIENT_ERROR  # noqa: PLR2004


def api_error_class(status_code: int) -> type[TogetherAPIError]:
    """The error class for a non-2xx status.

    Args:
        status_code: The HTTP status.

    Returns:
        The most specific `TogetherAPIError` subclass.
    """
    return status_meaning(status_code).error_class
