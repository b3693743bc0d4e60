"""Streamed batch generation on a Ray cluster, within one Together account's rate limits.

Install with `pip install "langchain-together-stream[ray]"`. Importing
`langchain_together_stream` never imports Ray; importing this module does.

- `TogetherBatchGenerator`: a callable class for `Dataset.map_batches(..., concurrency=N)`;
  each actor streams many prompts on one event loop, and every row comes back with its status,
  text, usage, finish reason, attempts and time to first token (a row never raises).
- `RateLimit` and `rate_limiter`: one named async actor holding the account's requests/s and
  tokens/min budget for the whole cluster; it halves on 429/503, ramps back slowly and honours
  `Retry-After` and `x-ratelimit-reset`.
- `enable_checkpointing`: Ray Data's checkpointing on the id column, so a rerun after a crash
  skips the rows already written; `written_ids` and `skip_written` do the same by reading the
  output directory, on any Ray version.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ray") is None:  # pragma: no cover - depends on the install
    msg = 'langchain_together_stream.ray needs Ray: pip install "langchain-together-stream[ray]"'
    raise ImportError(msg)

from langchain_together_stream.ray._actor import RateLimiterActor, rate_limiter
from langchain_together_stream.ray._generator import OUTPUT_COLUMNS, TogetherBatchGenerator
from langchain_together_stream.ray._limiter import AdaptiveRateLimiter, RateLimit
from langchain_together_stream.ray._resume import enable_checkpointing, skip_written, written_ids

__all__ = [
    "OUTPUT_COLUMNS",
    "AdaptiveRateLimiter",
    "RateLimit",
    "RateLimiterActor",
    "TogetherBatchGenerator",
    "enable_checkpointing",
    "rate_limiter",
    "skip_written",
    "written_ids",
]
