from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from langchain_together_stream._retry import (
    MAX_BACKOFF,
    MAX_SERVER_DELAY,
    MAX_TOTAL_DELAY,
    backoff_delay,
    is_retryable,
    next_delay,
    server_delay,
)
from langchain_together_stream._statuses import STATUSES, api_error_class, status_meaning
from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherConnectionError,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "150"}, 0.15),
        (
            {
                "retry-after": format_datetime(
                    datetime.fromtimestamp(NOW + 5, timezone.utc), usegmt=True
                )
            },
            5.0,
        ),
        ({"x-ratelimit-reset": "3"}, 3.0),
        ({"x-ratelimit-reset": str(NOW + 7)}, 7.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon", "x-ratelimit-reset": "1"}, 1.0),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_server_delay_forms(headers: dict[str, str], expected: float | None) -> None:
    delay = server_delay(headers, now=lambda: NOW)
    if expected is None:
        assert delay is None
    else:
        assert delay == pytest.approx(expected)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    assert backoff_delay(0, rng=lambda: 0.0) == 0.25
    assert backoff_delay(0, rng=lambda: 0.999999) == pytest.approx(0.5, rel=1e-5)
    assert backoff_delay(2, rng=lambda: 0.0) == 1.0
    assert backoff_delay(30, rng=lambda: 0.999999) <= MAX_BACKOFF


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TogetherConnectionError("reset"), True),
        (TogetherTimeoutError("slow"), True),
        (TogetherRateLimitError("busy", error_type="rate_limit_exceeded"), True),
        (TogetherRateLimitError("pay", error_type="credit_limit"), False),
        (TogetherRateLimitError("pay", error_code="insufficient_quota"), False),
        (TogetherServerError("x", status_code=503), True),
        (TogetherServerError("x", status_code=501), False),
        (TogetherAPIError("x", status_code=408), True),
        (TogetherAPIError("x", status_code=402), False),
        (TogetherBadRequestError("x", status_code=400), False),
        (TogetherAuthenticationError("x", status_code=401), False),
        (TogetherStreamError("x"), False),
    ],
)
def test_what_is_retried(error: Exception, retryable: bool) -> None:
    assert is_retryable(error) is retryable  # type: ignore[arg-type]


def test_next_delay_bounds() -> None:
    busy = TogetherServerError("x", status_code=503)
    assert next_delay(busy, attempt=2, max_retries=2, waited=0, headers=None) is None
    assert next_delay(busy, attempt=0, max_retries=2, waited=0, headers={"retry-after": "1"}) == 1.0
    too_long = {"retry-after": str(MAX_SERVER_DELAY + 1)}
    assert next_delay(busy, attempt=0, max_retries=2, waited=0, headers=too_long) is None
    assert (
        next_delay(
            busy,
            attempt=0,
            max_retries=5,
            waited=MAX_TOTAL_DELAY - 0.1,
            headers={"retry-after": "1"},
        )
        is None
    )


@pytest.mark.parametrize("status", [*STATUSES, 301, 418, 501, 599])
def test_retries_follow_the_status_table(status: int) -> None:
    meaning = status_meaning(status)
    error = meaning.error_class("x", status_code=status)
    assert is_retryable(error) is meaning.retryable
    assert type(error) is api_error_class(status)
