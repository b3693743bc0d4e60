"""Builders for chat stream chunks in the shapes Together sends (see the recordings 03-12)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.scripted_server import sse_body

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


def chat_chunk(
    content: str = "",
    finish_reason: str | None = None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    usage: dict[str, Any] | None = None,
    seed: int | None = None,
    chunk_id: str = "chat-test-1",
    model: str = MODEL,
    **choice_extra: Any,
) -> dict[str, Any]:
    """One chunk as Together's 2026 chat stream writes it."""
    delta: dict[str, Any] = {"token_id": None, "role": "assistant", "content": content}
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    if reasoning is not None:
        delta["reasoning"] = reasoning
    chunk: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": 1777219071,
        "choices": [
            {
                "index": 0,
                "text": content,
                "logprobs": None,
                "finish_reason": finish_reason,
                "seed": seed,
                "delta": delta,
                **choice_extra,
            }
        ],
        "model": model,
        "usage": usage,
    }
    return chunk


def tool_start(name: str, call_id: str, index: int = 0) -> dict[str, Any]:
    """The first fragment of a tool call: id, name and empty arguments."""
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }


def tool_args(arguments: str, index: int = 0) -> dict[str, Any]:
    """A later fragment of a tool call: a piece of its JSON arguments."""
    return {"index": index, "function": {"arguments": arguments}}


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cached_tokens": 2}


def chat_text_stream(tokens: list[str], finish_reason: str = "stop") -> list[bytes | float]:
    """A well-formed text answer: one chunk per token, then the finish chunk with usage."""
    chunks = [chat_chunk(token) for token in tokens]
    chunks.append(chat_chunk("", finish_reason, usage=USAGE, seed=13362809677919627000))
    return sse_body(*chunks)


class Sync:
    """Calls a chat model on the sync path; `Async` has the same methods on the event loop."""

    name = "sync"

    def invoke(self, model: Any, input: Any, **kwargs: Any) -> Any:
        return model.invoke(input, **kwargs)

    def stream(self, model: Any, input: Any, **kwargs: Any) -> list[Any]:
        return list(model.stream(input, **kwargs))

    def batch(self, model: Any, inputs: list[Any], **kwargs: Any) -> list[Any]:
        return model.batch(inputs, **kwargs)

    def first_chunks(self, model: Any, input: Any, count: int) -> list[Any]:
        """Read `count` chunks, then leave the stream (closing it)."""
        chunks = []
        stream = model.stream(input)
        for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == count:
                break
        stream.close()
        return chunks


class Async(Sync):
    name = "async"

    def invoke(self, model: Any, input: Any, **kwargs: Any) -> Any:
        return asyncio.run(model.ainvoke(input, **kwargs))

    def stream(self, model: Any, input: Any, **kwargs: Any) -> list[Any]:
        async def collect() -> list[Any]:
            return [chunk async for chunk in model.astream(input, **kwargs)]

        return asyncio.run(collect())

    def batch(self, model: Any, inputs: list[Any], **kwargs: Any) -> list[Any]:
        return asyncio.run(model.abatch(inputs, **kwargs))

    def first_chunks(self, model: Any, input: Any, count: int) -> list[Any]:
        async def read() -> list[Any]:
            chunks = []
            stream = model.astream(input)
            async for chunk in stream:
                chunks.append(chunk)
                if len(chunks) == count:
                    break
            await stream.aclose()
            return chunks

        return asyncio.run(read())


PATHS = [Sync(), Async()]
"""Parametrize a test body over both paths: `@pytest.mark.parametrize("path", PATHS, ids=...)`."""
PATH_IDS = [p.name for p in PATHS]


def make_chat(base_url: str, **kwargs: Any) -> Any:
    """A ChatTogether pointed at a loopback server, failing fast."""
    from langchain_together_stream import ChatTogether

    settings: dict[str, Any] = {
        "model": MODEL,
        "api_key": "sk-test-SECRET-0123456789",
        "base_url": base_url,
        "timeout": (2.0, 2.0),
    }
    settings.update(kwargs)
    return ChatTogether(**settings)
