"""The batch generator called directly (no Ray running: it uses a local limiter)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from langchain_together_stream import TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator
from langchain_together_stream.ray import (
    OUTPUT_COLUMNS,
    RateLimit,
    TogetherBatchGenerator,
)

KEY = "sk-ray-test-0123456789"


@pytest.fixture
def emu() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as server:
        yield server


def llm(emu: TogetherEmulator, **kwargs: Any) -> TogetherLLM:
    settings: dict[str, Any] = {"model": "m", "api_key": KEY, "base_url": emu.base_url}
    settings.update(kwargs)
    return TogetherLLM(**settings)


def batch(n: int, start: int = 0) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": ids, "prompt": [f"prompt {i}" for i in ids]})


def run(generator: TogetherBatchGenerator, table: Any) -> list[dict[str, Any]]:
    out = asyncio.run(generator(table))
    assert out.column_names == ["id", *OUTPUT_COLUMNS]
    return out.to_pylist()  # type: ignore[no-any-return]


def test_every_row_comes_back_with_usage_matching_the_ledger(emu: TogetherEmulator) -> None:
    generator = TogetherBatchGenerator(llm(emu, max_tokens=6), max_in_flight=8)
    rows = run(generator, batch(40))
    assert [r["id"] for r in rows] == list(range(40))
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["attempts"] for r in rows} == {1}
    assert {r["finish_reason"] for r in rows} == {"length"}
    assert all(r["ttft_s"] is not None and r["ttft_s"] >= 0 for r in rows)
    assert all(r["text"] for r in rows)
    ledger = emu.ledger
    assert sum(r["usage"]["total_tokens"] for r in rows) == ledger.total_tokens
    assert sum(r["usage"]["input_tokens"] for r in rows) == ledger.prompt_tokens
    assert sum(r["usage"]["output_tokens"] for r in rows) == ledger.completion_tokens
    assert ledger.completed == 40


@pytest.mark.parametrize(
    "make",
    [
        batch,
        lambda n: batch(n).to_pandas(),
        lambda n: {k: v.to_numpy() for k, v in zip(batch(n).column_names, batch(n).columns)},
    ],
    ids=["pyarrow", "pandas", "numpy"],
)
def test_every_batch_format_is_accepted(emu: TogetherEmulator, make: Any) -> None:
    rows = run(TogetherBatchGenerator(llm(emu, max_tokens=3)), make(5))
    assert [r["id"] for r in rows] == list(range(5))
    assert {r["status"] for r in rows} == {"ok"}


def test_streams_in_flight_stay_within_the_bound(emu: TogetherEmulator) -> None:
    emu.tokens_per_second = 200
    generator = TogetherBatchGenerator(llm(emu, max_tokens=5), max_in_flight=3)

    async def two_batches() -> None:
        # Ray Data runs several batches of one actor at once: the bound is the actor's.
        await asyncio.gather(generator(batch(10)), generator(batch(10, start=10)))

    asyncio.run(two_batches())
    spans = [(r.started_at, r.finished_at or r.started_at) for r in emu.requests]
    assert len(spans) == 20
    most = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
    assert most <= 3


def test_a_429_before_the_first_token_is_retried_and_counted(emu: TogetherEmulator) -> None:
    model = llm(emu, model="emulator/fault-rate-limit-then-ok", max_tokens=3, max_retries=5)
    limit = RateLimit(requests_per_second=1000, cooldown_seconds=0.01)
    rows = run(TogetherBatchGenerator(model, rate_limit=limit), batch(4))
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["attempts"] for r in rows} == {2}
    # The model's own retries were off: every attempt is one of ours, and counted.
    assert len(emu.requests) == 8


def test_retries_stop_at_max_attempts(emu: TogetherEmulator) -> None:
    model = llm(emu, model="emulator/fault-http-503", max_retries=5)
    limit = RateLimit(requests_per_second=1000, overload_pause=0.01)
    rows = run(TogetherBatchGenerator(model, rate_limit=limit, max_attempts=3), batch(2))
    assert [r["status"] for r in rows] == ["TogetherServerError"] * 2
    assert [r["attempts"] for r in rows] == [3, 3]
    assert [r["usage"] for r in rows] == [None, None]
    assert [r["ttft_s"] for r in rows] == [None, None]
    assert len(emu.requests) == 6


def test_an_error_after_the_first_token_is_kept_not_retried(emu: TogetherEmulator) -> None:
    model = llm(emu, model="emulator/fault-error-mid-stream")
    rows = run(TogetherBatchGenerator(model), batch(3))
    for row in rows:
        assert row["status"] == "TogetherStreamError"
        assert row["attempts"] == 1
        assert row["text"]  # the tokens before the error
        assert row["ttft_s"] is not None
    assert len(emu.requests) == 3


def test_a_final_error_is_not_retried(emu: TogetherEmulator) -> None:
    rows = run(TogetherBatchGenerator(llm(emu, model="emulator/fault-http-401")), batch(2))
    assert [(r["status"], r["attempts"]) for r in rows] == [("TogetherAuthenticationError", 1)] * 2


def test_to_input_shapes_what_the_model_gets(emu: TogetherEmulator) -> None:
    generator = TogetherBatchGenerator(
        llm(emu, max_tokens=2), to_input=lambda p: f"Q: {p}\nA:", keep_columns=["prompt"]
    )
    out = asyncio.run(generator(batch(2)))
    assert out.column_names == ["id", "prompt", *OUTPUT_COLUMNS]
    assert [r.json["prompt"] for r in emu.requests] == ["Q: prompt 0\nA:", "Q: prompt 1\nA:"]


def test_an_empty_batch_gives_an_empty_table(emu: TogetherEmulator) -> None:
    out = asyncio.run(TogetherBatchGenerator(llm(emu))(batch(0)))
    assert out.num_rows == 0
    assert out.schema.field("usage").type.num_fields == 3


def test_bad_bounds_are_refused(emu: TogetherEmulator) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        TogetherBatchGenerator(llm(emu), max_in_flight=0)


def test_importing_the_package_never_imports_ray() -> None:
    code = (
        "import sys, langchain_together_stream, langchain_together_stream.emulator\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
        "import langchain_together_stream.ray\n"
        "assert 'ray' not in sys.modules, 'ray imported by the ray module itself'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
