"""A rate limiter for one Together account, shared by every request of a job.

Pure asyncio and no Ray: `RateLimiterActor` wraps one of these in a named Ray actor so that a
whole cluster draws on one budget, and tests drive it directly.

Scheduling is GCRA (the "virtual scheduling" form of a token bucket): each grant is given a
start time, spaced `1/rate` after the previous one, with up to `burst_seconds` of budget usable
at once; the token budget works the same way with a spacing of `tokens/token_rate`. A caller
waits only on its own `asyncio.sleep`, so the limiter never blocks its event loop.

The rate adapts (AIMD): a 429 or 503 halves it (once per `cooldown_seconds`, since the answers
to requests already in flight arrive together), then it climbs back linearly, from the floor to
the full budget in `ramp_seconds`. A server-suggested wait (`Retry-After`, `x-ratelimit-reset`)
pauses every grant until it has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AdaptiveRateLimiter", "Outcome", "RateLimit"]

Outcome = Literal["ok", "rate_limited", "overloaded", "error"]
"""How a request ended, as far as the limiter cares."""


@dataclass(frozen=True)
class RateLimit:
    """The budget of one Together account (per model), and how to adapt to it.

    Attributes:
        requests_per_second: Requests per second at most (None: no request budget).
        tokens_per_minute: Prompt plus completion tokens per minute at most (None: none).
        name: The Ray actor's name; every worker naming it shares one budget.
        namespace: The Ray namespace of the actor (None: the job's).
        burst_seconds: Seconds of budget that may be spent at once after an idle spell.
        ramp_seconds: Seconds to climb from the floor back to the full budget.
        cooldown_seconds: At most one halving per this many seconds.
        min_fraction: The rate never drops below this fraction of the budget.
        overload_pause: Seconds every grant pauses after a 503 that suggested no wait.
        max_pause: The longest server-suggested pause honoured (a longer one is capped).
    """

    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    name: str = "together-rate-limiter"
    namespace: str | None = None
    burst_seconds: float = 0.5
    ramp_seconds: float = 60.0
    cooldown_seconds: float = 1.0
    min_fraction: float = 0.05
    overload_pause: float = 1.0
    max_pause: float = 60.0

    def __post_init__(self) -> None:
        """Refuse budgets and durations that cannot work.

        Raises:
            ValueError: A budget or duration is not positive, or min_fraction not in (0, 1].
        """
        for field in ("requests_per_second", "tokens_per_minute"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                msg = f"{field} must be > 0 or None"
                raise ValueError(msg)
        for field in ("burst_seconds", "ramp_seconds", "cooldown_seconds", "max_pause"):
            if not getattr(self, field) > 0:
                msg = f"{field} must be > 0"
                raise ValueError(msg)
        if self.overload_pause < 0:
            msg = "overload_pause must be >= 0"
            raise ValueError(msg)
        if not 0 < self.min_fraction <= 1:
            msg = "min_fraction must be in (0, 1]"
            raise ValueError(msg)


class AdaptiveRateLimiter:
    """Grants request slots within a `RateLimit`, adapting to the server's answers.

    Args:
        limit: The budget and adaptation settings.
        clock: Monotonic clock (replaceable in tests).
    """

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        now = clock()
        self._request_tat = now
        self._token_tat = now
        self._paused_until = now
        self._pauses = 0
        self._fraction_at = 1.0
        self._changed_at = now
        self._last_decrease = float("-inf")
        self._counts = {
            "granted": 0,
            "ok": 0,
            "rate_limited": 0,
            "overloaded": 0,
            "error": 0,
            "halvings": 0,
        }
        self._waited = 0.0

    # ------------------------------------------------------------------ grants

    def fraction(self, now: float | None = None) -> float:
        """The share of the budget currently allowed, in `[min_fraction, 1]`."""
        now = self._clock() if now is None else now
        climbed = (now - self._changed_at) / self.limit.ramp_seconds
        return min(1.0, self._fraction_at + max(0.0, climbed) * (1.0 - self.limit.min_fraction))

    def reserve(self, tokens: int, now: float | None = None) -> float:
        """Book the next slot for a request of about `tokens` tokens.

        Args:
            tokens: Estimated prompt plus completion tokens (corrected later by `report`).
            now: The current time (defaults to the clock).

        Returns:
            Seconds from `now` until the request may start (0 if at once).
        """
        now = self._clock() if now is None else now
        limit = self.limit
        share = self.fraction(now)
        start = max(now, self._paused_until)
        if limit.requests_per_second is not None:
            start = max(start, self._request_tat - limit.burst_seconds)
        if limit.tokens_per_minute is not None:
            start = max(start, self._token_tat - limit.burst_seconds)
        if limit.requests_per_second is not None:
            rate = limit.requests_per_second * share
            self._request_tat = max(self._request_tat, start) + 1.0 / rate
        if limit.tokens_per_minute is not None:
            token_rate = limit.tokens_per_minute / 60.0 * share
            self._token_tat = max(self._token_tat, start) + max(0, tokens) / token_rate
        self._counts["granted"] += 1
        return start - now

    async def acquire(self, tokens: int) -> float:
        """Wait for a slot for a request of about `tokens` tokens.

        A pause ordered while waiting (a 429 from another request) is honoured too.

        Args:
            tokens: Estimated prompt plus completion tokens.

        Returns:
            Seconds waited.
        """
        began = self._clock()
        pauses = self._pauses
        delay = self.reserve(tokens)
        slot = began + delay
        # Bounded: a new slot is booked only after a new pause, each pause is capped at
        # max_pause, and pauses come from answers to requests that were let through.
        while delay > 0:
            await asyncio.sleep(delay)
            delay = 0.0
            if self._pauses != pauses and slot < self._paused_until:
                # A pause was ordered while this caller slept, and its slot fell inside it.
                # Booking again spaces the callers out after the pause instead of releasing
                # them all together into a server that just said it was full.
                pauses = self._pauses
                delay = self.reserve(tokens)
                slot = self._clock() + delay
        waited = self._clock() - began
        self._waited += waited
        return waited

    # ------------------------------------------------------------------ feedback

    def report(
        self,
        outcome: Outcome,
        *,
        retry_after: float | None = None,
        tokens_used: int = 0,
        tokens_reserved: int = 0,
        now: float | None = None,
    ) -> None:
        """Tell the limiter how a granted request ended.

        Args:
            outcome: `"ok"`, `"rate_limited"` (429), `"overloaded"` (503 or another 5xx),
                or `"error"` (anything else; the rate is left alone).
            retry_after: Seconds the server asked to wait, if it said.
            tokens_used: Tokens the request really cost (its usage total).
            tokens_reserved: Tokens it was granted for; the difference is settled now.
            now: The current time (defaults to the clock).
        """
        now = self._clock() if now is None else now
        limit = self.limit
        self._counts[outcome] += 1
        if limit.tokens_per_minute is not None and tokens_used != tokens_reserved:
            token_rate = limit.tokens_per_minute / 60.0 * self.fraction(now)
            self._token_tat += (tokens_used - tokens_reserved) / token_rate
        if outcome not in ("rate_limited", "overloaded"):
            return
        pause = retry_after if retry_after is not None else limit.overload_pause
        pause = min(max(pause, 0.0), limit.max_pause)
        if now + pause > self._paused_until:
            self._paused_until = now + pause
            self._pauses += 1
            # No burst right after a pause: grants resume one slot apart.
            self._request_tat = max(self._request_tat, self._paused_until + limit.burst_seconds)
            self._token_tat = max(self._token_tat, self._paused_until + limit.burst_seconds)
        if now - self._last_decrease >= limit.cooldown_seconds:
            self._fraction_at = max(limit.min_fraction, self.fraction(now) / 2)
            self._changed_at = now
            self._last_decrease = now
            self._counts["halvings"] += 1

    def stats(self) -> dict[str, float]:
        """Counters and the current state, for progress displays and tests."""
        now = self._clock()
        share = self.fraction(now)
        rps = self.limit.requests_per_second
        return {
            **{k: float(v) for k, v in self._counts.items()},
            "fraction": share,
            "requests_per_second": (rps or 0.0) * share,
            "waited_seconds": self._waited,
            "paused_for": max(0.0, self._paused_until - now),
        }
