"""The Ray Data UDF: a column of prompts in, a column per result field out, every row kept.

`TogetherBatchGenerator` is a callable class for `Dataset.map_batches`. Ray Data makes one
instance per actor and runs its async `__call__` on the actor's event loop, several batches at
once; the instance bounds the streams in flight across all of them with one semaphore.

Retries happen here, and only before the first token (as everywhere in this package): the
model's own retries are turned off (`max_retries=0` when it has that field) so that every
attempt passes the cluster's rate limiter, is counted in `attempts`, and its 429 or 503 reaches
the limiter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_together_stream._retry import backoff_delay, is_retryable
from langchain_together_stream.errors import (
    TogetherError,
    TogetherRateLimitError,
    TogetherServerError,
)
from langchain_together_stream.ray._actor import LimiterClient, connect_limiter
from langchain_together_stream.ray._limiter import Outcome, RateLimit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pyarrow as pa

__all__ = ["OUTPUT_COLUMNS", "StreamingModel", "TogetherBatchGenerator"]

OUTPUT_COLUMNS = ("status", "text", "usage", "finish_reason", "attempts", "ttft_s")
"""Result columns, after the id column and any kept input columns."""

_OK = "ok"
_SERVICE_UNAVAILABLE = 503


class StreamingModel(Protocol):
    """Anything with LangChain's `astream`: `TogetherLLM`, a chat model, a runnable."""

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """Stream the answer to `input`."""
        ...


class TogetherBatchGenerator:
    """Streams one completion per row for `ray.data.Dataset.map_batches`; a row never raises.

    Example:
        ```python
        import ray
        from langchain_together_stream import TogetherLLM
        from langchain_together_stream.ray import RateLimit, TogetherBatchGenerator, rate_limiter

        limit = RateLimit(requests_per_second=50, tokens_per_minute=200_000)
        rate_limiter(limit)  # the driver owns the shared actor
        ds = ray.data.read_parquet("prompts/")
        ds.map_batches(
            TogetherBatchGenerator,
            fn_constructor_kwargs={
                "model": TogetherLLM(model="...", max_tokens=256),
                "rate_limit": limit,
            },
            batch_size=64,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=4),
            num_cpus=0.25,  # the actors wait on sockets, not cores
        ).write_parquet("answers/")
        ```

    Output columns: the id column, any `keep_columns`, then `status` (`"ok"` or the error's
    class name), `text` (what streamed, also on failure), `usage` (a struct of
    `input_tokens`, `output_tokens`, `total_tokens`; null when the model reported none),
    `finish_reason`, `attempts` (requests sent for the row) and `ttft_s` (seconds from the
    successful attempt's request to its first token; null if none came).

    Args:
        model: What streams: `TogetherLLM`, a `ChatTogether`-like chat model, any runnable
            with `astream`. It must pickle (Ray ships it to each actor).
        to_input: Turns a prompt into the model's input (default: the prompt itself, which
            LLMs and chat models both accept).
        prompt_column: The input column holding prompts.
        id_column: The input column holding unique row ids; copied to the output under the
            same name (so Ray Data's checkpointing can follow it).
        keep_columns: Further input columns copied to the output.
        max_in_flight: Streams open at once in this actor, across all its batches.
        rate_limit: The account budget shared by the whole cluster (None: no limiter).
        max_attempts: Requests per row at most; retries only before the first token.
        estimate_tokens: `prompt -> tokens` a request is expected to cost, charged to the
            token budget before it is sent and corrected from its usage after (default:
            prompt characters / 4 plus the model's `max_tokens`, or 256).

    Raises:
        ValueError: `max_in_flight` or `max_attempts` is below 1.
    """

    def __init__(
        self,
        model: StreamingModel,
        *,
        to_input: Callable[[str], Any] | None = None,
        prompt_column: str = "prompt",
        id_column: str = "id",
        keep_columns: Sequence[str] = (),
        max_in_flight: int = 64,
        rate_limit: RateLimit | None = None,
        max_attempts: int = 4,
        estimate_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if max_in_flight < 1 or max_attempts < 1:
            msg = "max_in_flight and max_attempts must be >= 1"
            raise ValueError(msg)
        self.model = _without_own_retries(model)
        self.to_input = to_input
        self.prompt_column = prompt_column
        self.id_column = id_column
        self.keep_columns = tuple(keep_columns)
        self.max_in_flight = max_in_flight
        self.rate_limit = rate_limit
        self.max_attempts = max_attempts
        self.estimate_tokens = estimate_tokens or _default_estimate(model)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: LimiterClient | None = None

    async def __call__(self, batch: Any) -> pa.Table:
        """Stream every row of `batch` (at most `max_in_flight` at once) and return results.

        Args:
            batch: A Ray Data batch: a pyarrow Table, a pandas DataFrame or a dict of arrays.

        Returns:
            A pyarrow Table with one row per input row, in input order.
        """
        import pyarrow as pa  # noqa: PLC0415 - a dependency of the optional ray extra

        self._bind_loop()
        ids = _column(batch, self.id_column)
        prompts = _column(batch, self.prompt_column)
        rows = await asyncio.gather(*(self._row(str(p)) for p in prompts))
        columns: dict[str, Any] = {self.id_column: pa.array(ids)}
        for name in self.keep_columns:
            columns[name] = pa.array(_column(batch, name))
        types = _output_types()
        for index, name in enumerate(OUTPUT_COLUMNS):
            columns[name] = pa.array([row[index] for row in rows], type=types[name])
        return pa.table(columns)

    # ------------------------------------------------------------------ one row

    def _bind_loop(self) -> None:
        # Ray Data keeps one loop per actor; a direct caller may bring a new loop each time.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_in_flight)
            self._limiter = None if self.rate_limit is None else connect_limiter(self.rate_limit)

    async def _row(self, prompt: str) -> tuple[Any, ...]:
        assert self._semaphore is not None
        reserved = self.estimate_tokens(prompt)
        attempts = 0
        # Bounded by max_attempts.
        while True:
            attempts += 1
            async with self._semaphore:
                result = await self._attempt(prompt, reserved)
            error, text, usage, finish, ttft = result
            if error is None:
                return (_OK, text, usage, finish, attempts, ttft)
            if ttft is not None or attempts >= self.max_attempts or not _retryable(error):
                return (type(error).__name__, text, usage, finish, attempts, ttft)
            outcome, retry_after = _classify(error)
            if self._limiter is None or outcome == "error":
                # The shared limiter paces 429s and 503s; the rest back off here.
                pause = retry_after if retry_after is not None else backoff_delay(attempts - 1)
                await asyncio.sleep(pause)

    async def _attempt(self, prompt: str, reserved: int) -> tuple[Any, ...]:
        limiter = self._limiter
        if limiter is not None:
            await limiter.acquire(reserved)
        observer = _Observer()
        parts: list[str] = []
        ttft: float | None = None
        error: Exception | None = None
        started = time.perf_counter()
        model_input = prompt if self.to_input is None else self.to_input(prompt)
        try:
            async for chunk in self.model.astream(model_input, {"callbacks": [observer]}):
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(_text_of(chunk))
        except Exception as exc:  # noqa: BLE001 - a row records its failure, never raises
            error = exc
        usage = observer.usage
        if limiter is not None:
            outcome, retry_after = ("ok", None) if error is None else _classify(error)
            used = usage["total_tokens"] if usage is not None else reserved
            limiter.report(outcome, retry_after, used, reserved)
        return error, "".join(parts), usage, observer.finish_reason, ttft


class _Observer(AsyncCallbackHandler):
    """Catches the run's final result, where usage and finish reason live."""

    def __init__(self) -> None:
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.usage, self.finish_reason = _usage_of(response)


def _usage_of(result: LLMResult) -> tuple[dict[str, int] | None, str | None]:
    generation = result.generations[0][0] if result.generations and result.generations[0] else None
    info: Mapping[str, Any] = (generation.generation_info or {}) if generation else {}
    finish = info.get("finish_reason")
    message = getattr(generation, "message", None)
    if finish is None:
        # A chat model keeps it on the summed message, whether or not it reported usage.
        finish = (getattr(message, "response_metadata", None) or {}).get("finish_reason")
    metadata = getattr(message, "usage_metadata", None)
    if metadata:
        usage = {
            "input_tokens": int(metadata.get("input_tokens", 0)),
            "output_tokens": int(metadata.get("output_tokens", 0)),
            "total_tokens": int(metadata.get("total_tokens", 0)),
        }
        return usage, finish
    raw = info.get("usage") or (result.llm_output or {}).get("token_usage")
    if not raw:
        return None, finish
    prompt_tokens = int(raw.get("prompt_tokens", 0))
    completion_tokens = int(raw.get("completion_tokens", 0))
    total = int(raw.get("total_tokens", prompt_tokens + completion_tokens))
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": completion_tokens,
        "total_tokens": total,
    }, finish


def _classify(error: Exception) -> tuple[Outcome, float | None]:
    if isinstance(error, TogetherRateLimitError):
        return "rate_limited", error.retry_after
    if isinstance(error, TogetherServerError) and error.status_code == _SERVICE_UNAVAILABLE:
        return "overloaded", None
    return "error", None


def _retryable(error: Exception) -> bool:
    return isinstance(error, TogetherError) and is_retryable(error)


def _text_of(chunk: Any) -> str:
    if isinstance(chunk, str):
        return chunk
    content = getattr(chunk, "content", None)
    if isinstance(content, str):
        return content
    text = getattr(chunk, "text", "")
    return text if isinstance(text, str) else ""


def _column(batch: Any, name: str) -> list[Any]:
    if isinstance(batch, Mapping):
        values = batch[name]
        return values.tolist() if hasattr(values, "tolist") else list(values)
    if hasattr(batch, "column_names"):  # pyarrow
        column: list[Any] = batch.column(name).to_pylist()
        return column
    series: list[Any] = batch[name].tolist()  # pandas
    return series


def _without_own_retries(model: StreamingModel) -> StreamingModel:
    fields = getattr(type(model), "model_fields", {})
    retries: object = getattr(model, "max_retries", None)
    if "max_retries" in fields and retries:
        copied: StreamingModel = model.model_copy(update={"max_retries": 0})  # type: ignore[attr-defined]
        return copied
    return model


def _default_estimate(model: StreamingModel) -> Callable[[str], int]:
    max_tokens = getattr(model, "max_tokens", None)
    answer = int(max_tokens) if isinstance(max_tokens, int) and max_tokens > 0 else 256
    return _Estimate(answer)


@dataclass(frozen=True)
class _Estimate:
    """Prompt characters / 4 plus the longest answer: a cheap upper-ish guess."""

    answer: int

    def __call__(self, prompt: str) -> int:
        return len(prompt) // 4 + 1 + self.answer


def _output_types() -> dict[str, pa.DataType]:
    import pyarrow as pa  # noqa: PLC0415

    usage = pa.struct(
        [
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("total_tokens", pa.int64()),
        ]
    )
    return {
        "status": pa.string(),
        "text": pa.string(),
        "usage": usage,
        "finish_reason": pa.string(),
        "attempts": pa.int32(),
        "ttft_s": pa.float64(),
    }
