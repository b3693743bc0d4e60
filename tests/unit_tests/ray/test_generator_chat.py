"""The batch generator with `ChatTogether`, against the emulator's /v1/chat/completions.

Called directly (no Ray running), as in test_generator.py. The emulator's answer depends only
on the prompt, so each row is checked against the same prompt asked through `ainvoke`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pyarrow as pa
import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_together_stream import ChatTogether
from langchain_together_stream.emulator import TogetherEmulator
from langchain_together_stream.ray import OUTPUT_COLUMNS, RateLimit, TogetherBatchGenerator

KEY = "sk-ray-chat-0123456789"


@pytest.fixture
def emu() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as server:
        yield server


def chat(emu: TogetherEmulator, **kwargs: Any) -> ChatTogether:
    settings: dict[str, Any] = {"model": "m", "api_key": KEY, "base_url": emu.base_url}
    settings.update(kwargs)
    return ChatTogether(**settings)


def batch(n: int) -> pa.Table:
    ids = list(range(n))
    return pa.table({"id": ids, "prompt": [f"prompt {i}" for i in ids]})


def run(generator: TogetherBatchGenerator, table: Any) -> list[dict[str, Any]]:
    out = asyncio.run(generator(table))
    assert out.column_names == ["id", *OUTPUT_COLUMNS]
    return out.to_pylist()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("max_tokens", "finish"), [(6, "length"), (None, "stop")])
def test_each_row_matches_the_chat_answer_to_its_prompt(
    emu: TogetherEmulator, max_tokens: int | None, finish: str
) -> None:
    model = chat(emu, max_tokens=max_tokens)
    rows = run(TogetherBatchGenerator(model, max_in_flight=4), batch(8))
    assert [r["id"] for r in rows] == list(range(8))
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["attempts"] for r in rows} == {1}
    assert all(r["ttft_s"] is not None and r["ttft_s"] >= 0 for r in rows)
    assert {r.path for r in emu.requests} == {"/v1/chat/completions"}

    async def answers() -> list[BaseMessage]:
        return await asyncio.gather(*(model.ainvoke(f"prompt {i}") for i in range(8)))

    for row, message in zip(rows, asyncio.run(answers()), strict=True):
        assert row["text"] == message.content
        assert row["finish_reason"] == message.response_metadata["finish_reason"] == finish
        metadata = message.usage_metadata  # type: ignore[attr-defined]
        assert row["usage"] == {
            "input_tokens": metadata["input_tokens"],
            "output_tokens": metadata["output_tokens"],
            "total_tokens": metadata["total_tokens"],
        }
        usage = row["usage"]
        assert usage["input_tokens"] > 0
        assert usage["input_tokens"] + usage["output_tokens"] == usage["total_tokens"]
        if max_tokens is not None:
            assert usage["output_tokens"] == max_tokens


def test_a_refused_request_is_a_row_not_an_exception(emu: TogetherEmulator) -> None:
    rows = run(TogetherBatchGenerator(chat(emu, model="emulator/fault-http-400")), batch(3))
    for row in rows:
        assert row["status"] == "TogetherBadRequestError"
        assert (row["text"], row["usage"], row["finish_reason"]) == ("", None, None)
        assert (row["attempts"], row["ttft_s"]) == (1, None)  # a 400 is final
    assert len(emu.requests) == 3


def test_an_error_mid_stream_keeps_the_partial_text(emu: TogetherEmulator) -> None:
    model = chat(emu, model="emulator/fault-error-mid-stream", max_tokens=20)
    rows = run(TogetherBatchGenerator(model), batch(3))
    for row in rows:
        assert row["status"] == "TogetherStreamError"
        assert row["text"]  # the tokens before the error
        assert row["ttft_s"] is not None
        assert row["attempts"] == 1  # never retried after the first token
        assert row["usage"] is None  # the stream never reached its usage
    assert len(emu.requests) == 3


def test_a_429_is_retried_by_the_generator_not_the_model(emu: TogetherEmulator) -> None:
    model = chat(emu, model="emulator/fault-rate-limit-then-ok", max_tokens=3, max_retries=5)
    limit = RateLimit(requests_per_second=1000, cooldown_seconds=0.01)
    rows = run(TogetherBatchGenerator(model, rate_limit=limit), batch(4))
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["attempts"] for r in rows} == {2}
    assert {r["finish_reason"] for r in rows} == {"length"}
    assert all(r["usage"]["output_tokens"] == 3 for r in rows)
    # ChatTogether's own retries were turned off: every request is one of the generator's.
    assert len(emu.requests) == 8


def test_retries_stop_at_max_attempts(emu: TogetherEmulator) -> None:
    model = chat(emu, model="emulator/fault-http-503")
    limit = RateLimit(requests_per_second=1000, overload_pause=0.01)
    rows = run(TogetherBatchGenerator(model, rate_limit=limit, max_attempts=2), batch(2))
    assert [(r["status"], r["attempts"]) for r in rows] == [("TogetherServerError", 2)] * 2
    assert len(emu.requests) == 4


def to_messages(prompt: str) -> list[BaseMessage]:
    return [SystemMessage("Answer in one line."), HumanMessage(prompt)]


def test_to_input_turns_a_prompt_into_messages(emu: TogetherEmulator) -> None:
    generator = TogetherBatchGenerator(chat(emu, max_tokens=2), to_input=to_messages)
    rows = run(generator, batch(2))
    assert {r["status"] for r in rows} == {"ok"}
    sent = sorted((r.json["messages"] for r in emu.requests), key=lambda m: m[1]["content"])
    assert sent == [
        [
            {"role": "system", "content": "Answer in one line."},
            {"role": "user", "content": f"prompt {i}"},
        ]
        for i in range(2)
    ]


class _NoUsageChat(BaseChatModel):
    """A chat model that reports a finish reason but no usage (no network involved)."""

    @property
    def _llm_type(self) -> str:
        return "no-usage"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage("ab", response_metadata={"finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="a"))
        last = AIMessageChunk(content="b", response_metadata={"finish_reason": "stop"})
        yield ChatGenerationChunk(message=last)


def test_a_chat_model_without_usage_still_gives_its_finish_reason() -> None:
    rows = run(TogetherBatchGenerator(_NoUsageChat()), batch(2))
    assert [(r["status"], r["text"], r["usage"]) for r in rows] == [("ok", "ab", None)] * 2
    assert [r["finish_reason"] for r in rows] == ["stop", "stop"]
