"""The cluster-wide rate limiter: one named async Ray actor per account budget.

Every worker that names the same `RateLimit.name` reaches the same actor (`get_if_exists`), so
the budget is the cluster's, not each actor's. The actor's methods are coroutines: a caller
waiting for its slot awaits `asyncio.sleep` on the actor's event loop, and thousands can wait at
once without holding a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from langchain_together_stream.ray._limiter import AdaptiveRateLimiter, Outcome, RateLimit

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["LimiterClient", "RateLimiterActor", "connect_limiter", "rate_limiter"]

# Waiting callers are pending actor calls; the default bound (1000) would cap a cluster's
# requests waiting for a slot.
_MAX_CONCURRENCY = 100_000


class RateLimiterActor:
    """The body of the named actor: an `AdaptiveRateLimiter` behind async methods.

    Args:
        limit: The budget to enforce.
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limiter = AdaptiveRateLimiter(limit)

    async def acquire(self, tokens: int) -> float:
        """Wait for a slot; see `AdaptiveRateLimiter.acquire`."""
        return await self._limiter.acquire(tokens)

    async def report(
        self,
        outcome: Outcome,
        retry_after: float | None,
        tokens_used: int,
        tokens_reserved: int,
    ) -> None:
        """Record how a request ended; see `AdaptiveRateLimiter.report`."""
        self._limiter.report(
            outcome,
            retry_after=retry_after,
            tokens_used=tokens_used,
            tokens_reserved=tokens_reserved,
        )

    async def stats(self) -> dict[str, float]:
        """Counters and state; see `AdaptiveRateLimiter.stats`."""
        return self._limiter.stats()


def rate_limiter(limit: RateLimit) -> Any:
    """The named limiter actor for `limit`, created by the first caller.

    Call it on the driver before the job starts, so the driver owns the actor and it lives as
    long as the job (an actor created by a Ray Data worker would die with that worker).

    Args:
        limit: The budget; its `name` (and `namespace`) identify the actor.

    Returns:
        The actor handle (`acquire`, `report` and `stats` are its remote methods).
    """
    import ray  # noqa: PLC0415 - Ray is an optional extra

    actor_class: Any = ray.remote(RateLimiterActor)
    return actor_class.options(
        name=limit.name,
        namespace=limit.namespace,
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=_MAX_CONCURRENCY,
    ).remote(limit)


class LimiterClient(Protocol):
    """What a batch generator needs from a limiter, local or remote."""

    def acquire(self, tokens: int) -> Awaitable[float]:
        """Wait for a slot."""
        ...

    def report(
        self,
        outcome: Outcome,
        retry_after: float | None,
        tokens_used: int,
        tokens_reserved: int,
    ) -> None:
        """Record how a request ended (without waiting for the record)."""
        ...


class _Local:
    def __init__(self, limit: RateLimit) -> None:
        self._limiter = AdaptiveRateLimiter(limit)

    def acquire(self, tokens: int) -> Awaitable[float]:
        return self._limiter.acquire(tokens)

    def report(
        self,
        outcome: Outcome,
        retry_after: float | None,
        tokens_used: int,
        tokens_reserved: int,
    ) -> None:
        self._limiter.report(
            outcome,
            retry_after=retry_after,
            tokens_used=tokens_used,
            tokens_reserved=tokens_reserved,
        )


class _Remote:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def acquire(self, tokens: int) -> Awaitable[float]:
        # An ObjectRef is awaitable on any event loop.
        ref: Awaitable[float] = self._handle.acquire.remote(tokens)
        return ref

    def report(
        self,
        outcome: Outcome,
        retry_after: float | None,
        tokens_used: int,
        tokens_reserved: int,
    ) -> None:
        # Fire and forget: the next acquire is queued behind it on the actor anyway.
        self._handle.report.remote(outcome, retry_after, tokens_used, tokens_reserved)


def connect_limiter(limit: RateLimit) -> LimiterClient:
    """The cluster's limiter when Ray is running, else one for this process alone.

    Args:
        limit: The budget.

    Returns:
        A client of the named actor inside a Ray job; a local limiter otherwise (a script or
        test calling a batch generator directly).
    """
    try:
        import ray  # noqa: PLC0415 - Ray is an optional extra
    except ImportError:
        return _Local(limit)
    if not ray.is_initialized():
        return _Local(limit)
    return _Remote(rate_limiter(limit))
