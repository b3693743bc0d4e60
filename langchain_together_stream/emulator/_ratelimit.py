"""An account-level rate limit for the emulator, and a ledger of the tokens it served.

Together limits each account (per model) in requests per second and tokens per minute. Past
either budget it answers ``429`` with its error envelope (``type: rate_limit_exceeded``) and
the headers ``retry-after``, ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
``x-ratelimit-reset`` (seconds until the budget allows the next request) and their
``-tokens`` twins. A client that keeps hammering past its 429s meets ``503 Overloaded``
answers in bursts. ``AccountRateLimit`` reproduces both so that a cluster-wide client limiter
can be tested offline.

The budgets are token buckets holding ``burst_seconds`` worth of budget. A request is admitted
while the request bucket holds one request and the token bucket is not in debt; it is then
charged its prompt and completion tokens at once (the emulator knows the answer before it
streams it), so one long answer may push the token bucket into debt and the next requests wait
for it to be repaid, as a per-minute budget does.

The ledger counts what was served: only answers delivered in full (the last event, which
carries ``usage``, was written), so a run's summed ``usage`` can be checked against it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AccountRateLimit", "Admission", "Ledger"]

_TOO_MANY_REQUESTS = 429
_OVERLOADED = 503


@dataclass(frozen=True)
class Ledger:
    """What the emulator served, and what it refused, since it started (or ``clear()``).

    Attributes:
        requests: Requests admitted (past the rate limit, whatever became of them).
        completed: Answers delivered in full, usage included.
        prompt_tokens: Prompt tokens of the completed answers.
        completion_tokens: Completion tokens of the completed answers.
        total_tokens: ``prompt_tokens + completion_tokens``.
        rate_limited: Requests answered 429 by the account limit.
        overloaded: Requests answered 503 during an overload burst.
    """

    requests: int = 0
    completed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    rate_limited: int = 0
    overloaded: int = 0

    def as_dict(self) -> dict[str, int]:
        """The ledger as a JSON-ready dict (what ``GET /emulator/ledger`` returns)."""
        return {
            "requests": self.requests,
            "completed": self.completed,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "rate_limited": self.rate_limited,
            "overloaded": self.overloaded,
        }


@dataclass(frozen=True)
class Admission:
    """The limit's answer to one request.

    Attributes:
        status: None to serve the request, else 429 or 503.
        headers: Rate-limit headers to send with the answer, whatever it is.
    """

    status: int | None
    headers: list[tuple[str, str]]


class AccountRateLimit:
    """Requests/s and tokens/min budgets for one emulated account, thread-safe.

    Args:
        requests_per_second: Requests admitted per second (None: no request budget).
        tokens_per_minute: Prompt plus completion tokens per minute (None: no token budget).
        burst_seconds: How many seconds of budget each bucket holds when full.
        overload_after: 429s within one second past which the server answers 503 for
            ``overload_seconds`` (None: never). Defaults to twice the request budget.
        overload_seconds: Length of a 503 burst.
        clock: Monotonic clock, replaceable in tests.

    Raises:
        ValueError: A budget or duration is not positive.
    """

    def __init__(
        self,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 1.0,
        overload_after: int | None = -1,
        overload_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_second", requests_per_second),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value <= 0:
                msg = f"{name} must be > 0 or None"
                raise ValueError(msg)
        if burst_seconds <= 0 or overload_seconds <= 0:
            msg = "burst_seconds and overload_seconds must be > 0"
            raise ValueError(msg)
        self.requests_per_second = requests_per_second
        self.tokens_per_minute = tokens_per_minute
        self.burst_seconds = burst_seconds
        if overload_after == -1:
            overload_after = (
                None if requests_per_second is None else max(1, round(2 * requests_per_second))
            )
        self.overload_after = overload_after
        self.overload_seconds = overload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._req_cap = (requests_per_second or 0.0) * burst_seconds
        self._tok_cap = (tokens_per_minute or 0.0) / 60.0 * burst_seconds
        self._req_level = self._req_cap
        self._tok_level = self._tok_cap
        self._last = clock()
        self._refusals: deque[float] = deque()
        self._overloaded_until = float("-inf")
        self._ledger = Ledger()

    # ------------------------------------------------------------------ admission

    def admit(self, tokens: int) -> Admission:
        """Decide one request that would cost ``tokens`` prompt plus completion tokens.

        Args:
            tokens: The request's prompt plus completion tokens.

        Returns:
            Whether to serve it (charging both budgets if so) and the headers to send.
        """
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now < self._overloaded_until:
                self._count(overloaded=1)
                return Admission(_OVERLOADED, [])
            request_wait = self._request_wait()
            token_wait = self._token_wait()
            if request_wait > 0 or token_wait > 0:
                return self._refuse(now, max(request_wait, token_wait))
            if self.requests_per_second is not None:
                self._req_level -= 1.0
            if self.tokens_per_minute is not None:
                self._tok_level -= tokens
            self._count(requests=1)
            return Admission(None, self._headers(reset=max(self._request_wait(), 0.0)))

    def charge(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Record an answer delivered in full in the ledger."""
        with self._lock:
            self._count(
                completed=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )

    @property
    def ledger(self) -> Ledger:
        """A snapshot of the ledger."""
        with self._lock:
            return self._ledger

    def clear(self) -> None:
        """Zero the ledger and refill both buckets."""
        with self._lock:
            self._ledger = Ledger()
            self._req_level = self._req_cap
            self._tok_level = self._tok_cap
            self._refusals.clear()
            self._overloaded_until = float("-inf")
            self._last = self._clock()

    # ------------------------------------------------------------------ internals

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        if self.requests_per_second is not None:
            self._req_level = min(
                self._req_cap, self._req_level + elapsed * self.requests_per_second
            )
        if self.tokens_per_minute is not None:
            self._tok_level = min(
                self._tok_cap, self._tok_level + elapsed * self.tokens_per_minute / 60.0
            )

    def _request_wait(self) -> float:
        if self.requests_per_second is None:
            return 0.0
        return (1.0 - self._req_level) / self.requests_per_second

    def _token_wait(self) -> float:
        if self.tokens_per_minute is None or self._tok_level > 0:
            return 0.0
        # In debt: the next request waits until the debt is repaid (and a token more).
        return (1.0 - self._tok_level) / (self.tokens_per_minute / 60.0)

    def _refuse(self, now: float, wait: float) -> Admission:
        self._refusals.append(now)
        # Bounded: at most one second of refusals is kept.
        while self._refusals and self._refusals[0] < now - 1.0:
            self._refusals.popleft()
        if self.overload_after is not None and len(self._refusals) > self.overload_after:
            self._overloaded_until = now + self.overload_seconds
            self._refusals.clear()
        self._count(rate_limited=1)
        return Admission(_TOO_MANY_REQUESTS, self._headers(reset=wait, retry=True))

    def _headers(self, *, reset: float, retry: bool = False) -> list[tuple[str, str]]:
        # Sub-second values keep their precision: fast test pacing depends on it.
        reset_text = f"{max(reset, 0.001):.3f}".rstrip("0").rstrip(".")
        headers: list[tuple[str, str]] = []
        if retry:
            headers.append(("retry-after", reset_text))
        if self.requests_per_second is not None:
            headers.append(("x-ratelimit-limit", f"{self.requests_per_second:g}"))
            headers.append(("x-ratelimit-remaining", str(max(0, int(self._req_level)))))
        if self.tokens_per_minute is not None:
            headers.append(("x-ratelimit-limit-tokens", f"{self.tokens_per_minute:g}"))
            headers.append(("x-ratelimit-remaining-tokens", str(max(0, int(self._tok_level)))))
        headers.append(("x-ratelimit-reset", reset_text))
        return headers

    def _count(self, **deltas: int) -> None:
        values = self._ledger.as_dict()
        for key, delta in deltas.items():
            values[key] += delta
        self._ledger = Ledger(**values)
