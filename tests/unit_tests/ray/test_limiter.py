"""The adaptive rate limiter on its own: pure asyncio, no Ray."""

from __future__ import annotations

import asyncio

import pytest

from langchain_together_stream.ray import AdaptiveRateLimiter, RateLimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_grants_spend_the_burst_then_keep_the_rate() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=10, burst_seconds=0.5), clock=clock)
    delays = [limiter.reserve(1) for _ in range(26)]
    assert delays[:6] == pytest.approx([0.0] * 6, abs=1e-9)
    assert delays[6:] == pytest.approx([0.1 * k for k in range(1, 21)])
    # 26 grants in 2.0 s of schedule: the budget plus the burst, not more.
    assert delays[-1] == pytest.approx(2.0)


def test_429_halves_once_per_cooldown_then_ramps_back() -> None:
    clock = FakeClock()
    limit = RateLimit(requests_per_second=10, ramp_seconds=10, cooldown_seconds=1.0)
    limiter = AdaptiveRateLimiter(limit, clock=clock)
    limiter.report("rate_limited")
    assert limiter.fraction() == pytest.approx(0.5)
    # Answers to requests already in flight arrive together: one halving for all of them.
    limiter.report("rate_limited")
    limiter.report("overloaded")
    assert limiter.fraction() == pytest.approx(0.5)
    clock.now += 1.0
    assert limiter.fraction() == pytest.approx(0.5 + 0.1 * 0.95)
    limiter.report("overloaded")
    assert limiter.fraction() == pytest.approx((0.5 + 0.095) / 2)
    clock.now += 10.0
    assert limiter.fraction() == 1.0
    assert limiter.stats()["halvings"] == 2


def test_rate_never_drops_below_the_floor() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=100, min_fraction=0.1), clock=clock)
    for _ in range(20):
        limiter.report("rate_limited", retry_after=0)
        clock.now += 1.0
    assert limiter.fraction() >= 0.1


def test_retry_after_pauses_every_grant() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=1000), clock=clock)
    assert limiter.reserve(1) == 0.0
    limiter.report("rate_limited", retry_after=2.5)
    assert limiter.reserve(1) == pytest.approx(2.5)
    assert limiter.stats()["paused_for"] == pytest.approx(2.5)


def test_grants_resume_one_slot_apart_after_a_pause() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=10, burst_seconds=0.5), clock=clock)
    limiter.report("rate_limited", retry_after=1.0, now=clock.now)
    delays = [limiter.reserve(1) for _ in range(4)]
    # The rate was halved to 5/s: one slot every 0.2 s from the end of the pause, no burst.
    assert delays == pytest.approx([1.0, 1.2, 1.4, 1.6])


def test_callers_asleep_through_a_pause_book_again_instead_of_rushing_out() -> None:
    async def main() -> list[float]:
        limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=20, burst_seconds=0.05))
        waiting = [asyncio.create_task(limiter.acquire(1)) for _ in range(6)]
        await asyncio.sleep(0.06)
        limiter.report("rate_limited", retry_after=0.3)
        return sorted(await asyncio.gather(*waiting))

    waits = asyncio.run(main())
    late = [w for w in waits if w > 0.3]
    # Those still waiting when the pause came go out after it, spaced at the halved rate.
    assert len(late) >= 3
    assert late[-1] - late[0] >= 0.1 * (len(late) - 1) * 0.9


def test_503_without_a_suggestion_pauses_for_overload_pause() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(
        RateLimit(requests_per_second=1000, overload_pause=0.75), clock=clock
    )
    limiter.report("overloaded")
    assert limiter.reserve(1) == pytest.approx(0.75)


def test_a_huge_retry_after_is_capped() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=10, max_pause=5), clock=clock)
    limiter.report("rate_limited", retry_after=3600)
    assert limiter.reserve(1) == pytest.approx(5.0)


def test_other_errors_leave_the_rate_alone() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=10), clock=clock)
    limiter.report("error")
    assert limiter.fraction() == 1.0
    assert limiter.reserve(1) == 0.0


def test_token_budget_spaces_requests_and_settles_on_real_usage() -> None:
    clock = FakeClock()
    # 600 tokens/min = 10 tokens/s; half a second of burst.
    limit = RateLimit(tokens_per_minute=600, burst_seconds=0.5)
    limiter = AdaptiveRateLimiter(limit, clock=clock)
    assert limiter.reserve(50) == 0.0  # books 5 s of tokens
    assert limiter.reserve(50) == pytest.approx(4.5)
    # The first request really cost 10 tokens: 4 s of budget comes back.
    limiter.report("ok", tokens_used=10, tokens_reserved=50)
    assert limiter.reserve(10) == pytest.approx(5.5)


def test_acquire_waits_on_the_event_loop_without_blocking_it() -> None:
    async def main() -> tuple[int, float]:
        limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=40, burst_seconds=0.05))
        ticks = 0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        waited = await asyncio.gather(*(limiter.acquire(1) for _ in range(12)))
        stop.set()
        await beat
        return ticks, max(waited)

    ticks, longest = asyncio.run(main())
    assert longest > 0.15  # 12 grants at 40/s take ~0.25 s
    # A limiter that slept with time.sleep would have stopped the heartbeat meanwhile.
    assert ticks >= 5


def test_acquire_honours_a_pause_ordered_while_it_waits() -> None:
    async def main() -> float:
        limiter = AdaptiveRateLimiter(RateLimit(requests_per_second=10, burst_seconds=0.1))
        for _ in range(2):
            await limiter.acquire(1)
        waiting = asyncio.create_task(limiter.acquire(1))
        await asyncio.sleep(0)
        limiter.report("rate_limited", retry_after=0.4)
        return await waiting

    assert asyncio.run(main()) >= 0.35


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requests_per_second", 0),
        ("tokens_per_minute", -1),
        ("ramp_seconds", 0),
        ("min_fraction", 0),
        ("min_fraction", 1.5),
        ("overload_pause", -1),
    ],
)
def test_bad_settings_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RateLimit(**{field: value})  # type: ignore[arg-type]
