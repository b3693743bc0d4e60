"""When to retry a request that failed before its first event, and how long to wait."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from langchain_together_stream._statuses import status_meaning
from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherCertificateError,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimitError,
)

BASE_DELAY = 0.5
"""Seconds before the first retry when the server suggests nothing."""
MAX_BACKOFF = 8.0
"""The longest wait the exponential backoff reaches on its own."""
MAX_SERVER_DELAY = 60.0
"""The longest server-suggested wait honoured; a longer one ends the retries."""
MAX_TOTAL_DELAY = 90.0
"""All waits of one call together never exceed this."""

# A 429 whose type says the money ran out will not succeed later on its own.
_FINAL_RATE_LIMIT_MARKERS = ("credit", "billing", "quota", "payment", "insufficient")
# Together's reset header is documented as an interval; values this large are epoch times.
_EPOCH_THRESHOLD = 1_000_000_000


def is_retryable(error: TogetherError) -> bool:
    """Whether an error before the first event may go away on a second try.

    Args:
        error: The error the attempt ended with.

    Returns:
        True for connection failures, timeouts and the statuses `_statuses` marks
        retryable, except a 429 about credit and an untrusted certificate.
    """
    if isinstance(error, TogetherCertificateError):
        return False
    if isinstance(error, TogetherConnectionError):
        return True
    if isinstance(error, TogetherRateLimitError):
        kind = f"{error.error_type or ''} {error.error_code or ''}".lower()
        return not any(marker in kind for marker in _FINAL_RATE_LIMIT_MARKERS)
    if isinstance(error, TogetherAPIError):
        return status_meaning(error.status_code).retryable
    return False


def server_delay(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """The wait the server asked for, in seconds, from the headers it sent.

    Reads `retry-after-ms`, then `Retry-After` (seconds or an HTTP date), then Together's
    `x-ratelimit-reset` (an interval, or an epoch time when it is very large).

    Args:
        headers: Response headers, looked up case-insensitively by the caller's mapping.
        now: The wall clock, for HTTP dates and epoch times.

    Returns:
        Seconds to wait (never negative), or None when no header says.
    """
    for name, scale in (
        ("retry-after-ms", 0.001),
        ("retry-after", 1.0),
        ("x-ratelimit-reset", 1.0),
    ):
        value = headers.get(name)
        if value is None:
            continue
        seconds = _seconds(value.strip(), now())
        if seconds is not None:
            seconds *= scale
            return max(0.0, seconds)
    return None


def _seconds(value: str, now: float) -> float | None:
    try:
        number = float(value)
    except ValueError:
        try:
            return parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if number != number or number in (float("inf"), float("-inf")):  # noqa: PLR0124
        return None
    return number - now if number > _EPOCH_THRESHOLD else number


def backoff_delay(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter.

    Args:
        attempt: 0 for the first retry, 1 for the second, and so on.
        rng: A source of floats in [0, 1), for the jitter.

    Returns:
        Seconds to wait: `BASE_DELAY * 2**attempt` capped at `MAX_BACKOFF`, times 0.5-1.0.
    """
    ceiling = min(MAX_BACKOFF, BASE_DELAY * 2.0**attempt)
    return ceiling * (0.5 + rng() / 2)


def next_delay(
    error: TogetherError,
    *,
    attempt: int,
    max_retries: int,
    waited: float,
    headers: Mapping[str, str] | None,
) -> float | None:
    """How long to wait before retrying, or None when the error must be raised.

    Args:
        error: The error the attempt ended with (raised before any event).
        attempt: How many retries were already made.
        max_retries: The configured bound.
        waited: Seconds already spent waiting in this call.
        headers: The failed response's headers, if there was a response.

    Returns:
        Seconds to sleep before the next attempt, or None to give up.
    """
    if attempt >= max_retries or not is_retryable(error):
        return None
    suggested = server_delay(headers) if headers is not None else None
    if suggested is not None and suggested > MAX_SERVER_DELAY:
        return None
    delay = suggested if suggested is not None else backoff_delay(attempt)
    if waited + delay > MAX_TOTAL_DELAY:
        return None
    return delay
