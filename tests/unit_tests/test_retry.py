"""Retries: the policy (which failures, how long to wait) as pure functions, and the policy
observed through a loopback server: bounded, jittered, capped, never after the first token,
and the server's requested wait honoured within the cap.

The server-facing tests replace the transport's `time.sleep` with a recorder (the `sleeps`
fixture), so they prove which waits were chosen without spending them or asserting on timing.
The last section runs each retry behaviour through the sync and the async entry points.
"""

from __future__ import annotations

import random
import statistics
import time
import types
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherConnectionError,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
    _retry,
    _transport,
)
from langchain_together_stream._retry import (
    BASE_DELAY,
    MAX_BACKOFF,
    MAX_SERVER_DELAY,
    MAX_TOTAL_DELAY,
    backoff_delay,
    is_retryable,
    next_delay,
    server_delay,
)
from langchain_together_stream._statuses import STATUSES, api_error_class, status_meaning
from tests.conftest import make_llm
from tests.hostile import FAST, TEXT, TOKENS, Counter, Path, checked_out
from tests.llm_helpers import Recorder, json_error
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream

# --- the policy, as pure functions ---------------------------------------------------------


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


# --- observed through a loopback server ---------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(_transport, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


def _status(status: int, *headers: tuple[str, str]) -> Reply:
    return Reply(status=status, headers=list(headers), body=[b"{}"], framing="length")


def _http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(time.time() + offset, timezone.utc), usegmt=True)


# --- bounded by max_retries ----------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 2, 5])
@pytest.mark.parametrize(
    "reply",
    [_status(503), _status(429), Reply(body=[30.0]), Reply(reset=True)],
    ids=["503", "429", "stall", "reset"],
)
def test_attempts_are_bounded_by_max_retries(
    serve: Any, sleeps: list[float], max_retries: int, reply: Reply
) -> None:
    server = serve(reply)
    counter = Counter()
    with pytest.raises((TogetherServerError, TogetherRateLimitError, TogetherConnectionError)):
        make_llm(server, max_retries=max_retries, timeout=(2.0, 0.05)).invoke(
            "x", config={"callbacks": [counter]}
        )
    assert len(server.seen) == max_retries + 1
    assert len(sleeps) == max_retries
    assert len(counter.errors) == 1


def test_a_retry_that_succeeds_streams_each_token_once(serve: Any, sleeps: list[float]) -> None:
    server = serve(_status(502), Reply(reset=True), Reply(body=token_stream(TOKENS)))
    counter = Counter()
    llm = make_llm(server, max_retries=2, **FAST)
    assert llm.invoke("x", config={"callbacks": [counter]}) == TEXT
    assert "".join(counter.tokens) == TEXT
    assert (len(server.seen), len(sleeps), counter.errors) == (3, 2, [])
    assert checked_out(llm) == 0


# --- jitter and caps -----------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 10])
def test_backoff_is_jittered_over_half_its_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(MAX_BACKOFF, BASE_DELAY * 2**attempt)
    delays = [backoff_delay(attempt, rng=rng.random) for _ in range(2000)]
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    # Spread across the whole band, not clustered: clients that failed together spread out.
    assert min(delays) < ceiling * 0.52
    assert max(delays) > ceiling * 0.98
    assert statistics.pstdev(delays) > ceiling * 0.12
    assert len(set(delays)) > 1900


def test_backoff_uses_real_randomness_by_default() -> None:
    assert len({backoff_delay(3) for _ in range(50)}) > 40


@pytest.mark.parametrize(
    "headers",
    [None, {"retry-after": str(MAX_SERVER_DELAY)}, {"retry-after": "7"}, {"retry-after-ms": "1"}],
)
def test_total_wait_of_one_call_is_capped(headers: dict[str, str] | None) -> None:
    error = TogetherServerError("busy", status_code=503)
    waited = 0.0
    for attempt in range(1001):  # bounded: 1000 retries at most
        delay = next_delay(error, attempt=attempt, max_retries=1000, waited=waited, headers=headers)
        if delay is None:
            break
        assert 0 <= delay <= max(MAX_BACKOFF, MAX_SERVER_DELAY)
        waited += delay
    assert waited <= MAX_TOTAL_DELAY


# --- never after the first token -----------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        Reply(body=[*sse_body(completion_chunk("Hi"), done=False)], reset=True),
        Reply(body=[*sse_body(completion_chunk("Hi"), done=False), 30.0]),
        Reply(body=[*sse_body(completion_chunk("Hi"), done=False), b"data: {oops\n\n"]),
        Reply(body=[*sse_body(completion_chunk("Hi"), done=False)]),
    ],
    ids=["reset", "stall", "bad-json", "truncated"],
)
def test_never_retried_after_the_first_token(serve: Any, sleeps: list[float], tail: Reply) -> None:
    server = serve(tail, Reply(body=token_stream(TOKENS)))
    with pytest.raises((TogetherConnectionError, TogetherStreamError)) as info:
        make_llm(server, max_retries=5, **FAST).invoke("x")
    assert info.value.partial_text == "Hi"
    assert (len(server.seen), sleeps) == (1, [])


def test_an_event_without_text_still_counts_as_the_first_token(
    serve: Any, sleeps: list[float]
) -> None:
    # A first event (even an empty one) means the server accepted the request; billing
    # may have started, so a later failure is not retried either.
    body = [*sse_body(completion_chunk(""), done=False), 30.0]
    server = serve(Reply(body=body), Reply(body=token_stream(TOKENS)))
    with pytest.raises(TogetherTimeoutError):
        make_llm(server, max_retries=5, **FAST).invoke("x")
    assert (len(server.seen), sleeps) == (1, [])


# --- the server's requested wait, honoured within the cap ----------------------------------


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Retry-After", "1", 1.0),
        ("Retry-After", "0", 0.0),
        ("Retry-After", "2.5", 2.5),
        ("Retry-After", str(int(MAX_SERVER_DELAY)), MAX_SERVER_DELAY),
        ("retry-after-ms", "250", 0.25),
        ("x-ratelimit-reset", "3", 3.0),
    ],
)
def test_a_server_wait_within_the_cap_is_honoured(
    serve: Any, sleeps: list[float], header: str, value: str, expected: float
) -> None:
    server = serve(_status(429, (header, value)), Reply(body=token_stream(TOKENS)))
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert len(server.seen) == 2
    assert sleeps == [pytest.approx(expected)]


def test_an_http_date_retry_after_is_honoured(serve: Any, sleeps: list[float]) -> None:
    server = serve(_status(503, ("Retry-After", _http_date(20))), Reply(body=token_stream(TOKENS)))
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert len(server.seen) == 2
    # HTTP dates have one-second resolution.
    assert 18.0 <= sleeps[0] <= 21.0


def test_an_http_date_in_the_past_retries_at_once(serve: Any, sleeps: list[float]) -> None:
    server = serve(_status(503, ("Retry-After", _http_date(-60))), Reply(body=token_stream(TOKENS)))
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert sleeps == [0.0]


def test_an_epoch_ratelimit_reset_is_honoured(serve: Any, sleeps: list[float]) -> None:
    server = serve(
        _status(429, ("x-ratelimit-reset", str(time.time() + 10))), Reply(body=token_stream(TOKENS))
    )
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert 8.0 <= sleeps[0] <= 10.5


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Retry-After", str(int(MAX_SERVER_DELAY) + 1)),
        ("Retry-After", "86400"),
        ("Retry-After", "HTTP-DATE"),
        ("retry-after-ms", str(int(MAX_SERVER_DELAY * 1000) + 1000)),
        ("x-ratelimit-reset", "3600"),
        ("x-ratelimit-reset", "EPOCH"),
    ],
)
def test_a_server_wait_beyond_the_cap_is_raised_at_once(
    serve: Any, sleeps: list[float], header: str, value: str
) -> None:
    if value == "HTTP-DATE":
        value = _http_date(3600)
    elif value == "EPOCH":
        value = str(time.time() + 3600)
    server = serve(_status(429, (header, value)), Reply(body=token_stream(TOKENS)))
    counter = Counter()
    with pytest.raises(TogetherRateLimitError) as info:
        make_llm(server, max_retries=3, **FAST).invoke("x", config={"callbacks": [counter]})
    assert (len(server.seen), sleeps) == (1, [])
    assert info.value.retry_after is not None
    assert info.value.retry_after > MAX_SERVER_DELAY
    assert len(counter.errors) == 1


def test_retry_after_on_a_5xx_is_honoured_too(serve: Any, sleeps: list[float]) -> None:
    server = serve(_status(503, ("Retry-After", "4")), Reply(body=token_stream(TOKENS)))
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert sleeps == [4.0]


def test_garbage_retry_after_falls_back_to_jittered_backoff(
    serve: Any, sleeps: list[float]
) -> None:
    server = serve(_status(503, ("Retry-After", "soon, maybe")), Reply(body=token_stream(TOKENS)))
    assert make_llm(server, max_retries=1, **FAST).invoke("x") == TEXT
    assert BASE_DELAY / 2 <= sleeps[0] <= BASE_DELAY


def test_waits_stop_once_the_total_cap_would_be_exceeded(serve: Any, sleeps: list[float]) -> None:
    server = serve(_status(503, ("Retry-After", "40")))
    with pytest.raises(TogetherServerError):
        make_llm(server, max_retries=10, **FAST).invoke("x")
    assert sleeps == [40.0, 40.0]  # a third 40 s wait would pass MAX_TOTAL_DELAY (90 s)
    assert sum(sleeps) <= MAX_TOTAL_DELAY
    assert len(server.seen) == 3
    assert _retry.MAX_TOTAL_DELAY == MAX_TOTAL_DELAY


# --- on the sync and the async path -------------------------------------------------------


def test_rate_limit_is_retried_honouring_retry_after(serve: Any, path: Path) -> None:
    server = serve(
        json_error(429, "slow down", "rate_limit_exceeded", [("Retry-After", "0.05")]),
        Reply(body=token_stream(TOKENS)),
    )
    assert path.invoke(make_llm(server)) == TEXT
    assert len(server.seen) == 2


def test_server_errors_are_retried_up_to_max_retries(serve: Any, path: Path) -> None:
    server = serve(json_error(503, "Overloaded", "server_error", [("Retry-After", "0.01")]))
    with pytest.raises(TogetherServerError):
        path.invoke(make_llm(server, max_retries=3))
    assert len(server.seen) == 4


def test_credit_limit_is_never_retried(serve: Any, path: Path) -> None:
    server = serve(
        json_error(429, "Credit limit reached", "credit_limit", [("Retry-After", "0.01")])
    )
    with pytest.raises(TogetherRateLimitError) as info:
        path.invoke(make_llm(server, max_retries=3))
    assert info.value.retry_after == pytest.approx(0.01)
    assert len(server.seen) == 1


def test_a_retry_after_beyond_the_cap_is_raised_not_waited(serve: Any, path: Path) -> None:
    server = serve(json_error(429, "slow down", "rate_limit_exceeded", [("Retry-After", "120")]))
    with pytest.raises(TogetherRateLimitError) as info:
        path.invoke(make_llm(server, max_retries=3))
    assert info.value.retry_after == 120
    assert len(server.seen) == 1


@pytest.mark.parametrize("entry", ["invoke", "stream"])
def test_no_retry_after_the_first_token(serve: Any, path: Path, entry: str) -> None:
    body = [
        *sse_body(completion_chunk("Hel"), completion_chunk("lo"), done=False),
        b'data: {"error": {"message": "engine crashed", "type": "server_error"}}\n\n',
    ]
    server = serve(Reply(body=body), Reply(body=token_stream(TOKENS)))
    recorder = Recorder()
    call = getattr(path, entry)
    with pytest.raises(TogetherStreamError, match="engine crashed") as info:
        call(make_llm(server, max_retries=3), config={"callbacks": [recorder]})
    assert info.value.partial_text == "Hello"
    assert info.value.error_type == "server_error"
    assert len(server.seen) == 1
    assert recorder.kinds().count("error") == 1
