"""Several prompts in one call stream at once: `batch`/`abatch` and `generate`/`agenerate`.

Concurrency is proved by cause where it can be (the emulator records when each request
started and finished), with one generous wall-clock check that 8 paced prompts take about
as long as one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_together_stream import TogetherLLM, TogetherServerError
from langchain_together_stream.emulator import RecordedRequest, TogetherEmulator

TOKENS_PER_SECOND = 10.0
WORDS = 10  # about one second per answer at the pace above


def answer(prompt: str, request: Mapping[str, Any]) -> str:
    if prompt == "bad":
        msg = "this prompt fails"
        raise RuntimeError(msg)
    return f"{prompt}:" + " w" * (WORDS * 5 if prompt.startswith("long") else WORDS)


@pytest.fixture
def emulator() -> Iterator[TogetherEmulator]:
    with TogetherEmulator(tokens_per_second=TOKENS_PER_SECOND, responder=answer) as emu:
        yield emu


def llm_for(emulator: TogetherEmulator) -> TogetherLLM:
    return TogetherLLM(
        model="m", api_key="k", base_url=emulator.base_url, timeout=(2.0, 5.0), max_retries=0
    )


def batch_sync(llm: TogetherLLM, prompts: list[str], **kwargs: Any) -> list[Any]:
    return llm.batch(prompts, **kwargs)  # type: ignore[arg-type]


def batch_async(llm: TogetherLLM, prompts: list[str], **kwargs: Any) -> list[Any]:
    return asyncio.run(llm.abatch(prompts, **kwargs))  # type: ignore[arg-type]


def generate_sync(llm: TogetherLLM, prompts: list[str], **kwargs: Any) -> list[Any]:
    return [g[0].text for g in llm.generate(prompts, **kwargs).generations]


def generate_async(llm: TogetherLLM, prompts: list[str], **kwargs: Any) -> list[Any]:
    return [g[0].text for g in asyncio.run(llm.agenerate(prompts, **kwargs)).generations]


BATCH = {"batch-sync": batch_sync, "batch-async": batch_async}
ALL = {**BATCH, "generate-sync": generate_sync, "generate-async": generate_async}
Form = Callable[..., list[Any]]


def most_at_once(requests: list[RecordedRequest]) -> int:
    edges = sorted(
        [(r.started_at, 1) for r in requests] + [(r.finished_at or 0.0, -1) for r in requests],
        key=lambda edge: (edge[0], edge[1]),
    )
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def expected(prompt: str) -> str:
    return f"{prompt}:" + " w" * WORDS


@pytest.mark.parametrize("form", sorted(ALL))
def test_eight_paced_prompts_take_about_as_long_as_one(
    emulator: TogetherEmulator, form: str
) -> None:
    run: Form = ALL[form]
    llm = llm_for(emulator)
    extra = {"config": {"max_concurrency": 8}} if form in BATCH else {}
    started = time.monotonic()
    assert run(llm, ["p0"]) == [expected("p0")]
    one = time.monotonic() - started
    prompts = [f"p{index}" for index in range(8)]
    emulator.clear()
    started = time.monotonic()
    results = run(llm, prompts, **extra)
    eight = time.monotonic() - started
    assert results == [expected(prompt) for prompt in prompts]  # in order
    assert most_at_once(emulator.requests) == 8  # all eight streamed at the same time
    assert eight < 3 * one  # one at a time would take 8 times as long


@pytest.mark.parametrize("form", sorted(BATCH))
def test_max_concurrency_bounds_the_streams_at_once(emulator: TogetherEmulator, form: str) -> None:
    prompts = [f"p{index}" for index in range(4)]
    results = BATCH[form](llm_for(emulator), prompts, config={"max_concurrency": 2})
    assert results == [expected(prompt) for prompt in prompts]
    assert most_at_once(emulator.requests) == 2


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[list[str]] = []
        self.tokens: list[str] = []
        self.ends: list[str] = []

    def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
        self.prompts.append(prompts)

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(response.generations[0][0].text)


@pytest.mark.parametrize("form", sorted(BATCH))
def test_each_input_is_its_own_run_with_its_own_callbacks(
    emulator: TogetherEmulator, form: str
) -> None:
    prompts = [f"p{index}" for index in range(4)]
    recorders = [Recorder() for _ in prompts]
    configs = [{"callbacks": [recorder]} for recorder in recorders]
    results = BATCH[form](llm_for(emulator), prompts, config=configs)
    assert results == [expected(prompt) for prompt in prompts]
    for prompt, recorder in zip(prompts, recorders):
        assert recorder.prompts == [[prompt]]
        assert "".join(recorder.tokens) == expected(prompt)  # its own tokens, no others
        assert recorder.ends == [expected(prompt)]


@pytest.mark.parametrize("form", sorted(BATCH))
def test_return_exceptions_puts_each_failure_in_its_place(
    emulator: TogetherEmulator, form: str
) -> None:
    run = BATCH[form]
    results = run(llm_for(emulator), ["a", "bad", "c"], return_exceptions=True)
    assert results[0] == expected("a")
    assert isinstance(results[1], TogetherServerError)
    assert results[2] == expected("c")
    with pytest.raises(TogetherServerError):
        run(llm_for(emulator), ["a", "bad", "c"])


@pytest.mark.parametrize("form", ["generate-sync", "generate-async", "batch-async"])
def test_a_failed_prompt_closes_the_other_streams(emulator: TogetherEmulator, form: str) -> None:
    with pytest.raises(TogetherServerError):
        ALL[form](llm_for(emulator), ["long1", "bad", "long2"])
    long_ones = [r for r in emulator.requests if r.json["prompt"].startswith("long")]
    # The failure can cancel a long prompt before its request is even sent.
    assert 1 <= len(long_ones) <= 2
    for index in range(len(emulator.requests)):
        if emulator.requests[index].json["prompt"].startswith("long"):
            # Hung up on, well before the 50 tokens were sent.
            assert emulator.wait_for_disconnect(index, timeout=5.0) is not None
    assert all(r.tokens_sent < WORDS * 5 for r in emulator.requests if r in long_ones)
