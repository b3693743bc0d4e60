"""Builders for chat stream chunks in the shapes Together sends (see the recordings 03-12)."""

from __future__ import annotations

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
