"""Together chat deltas to LangChain `AIMessageChunk`s; shared by the sync and async paths.

Each delta becomes one chunk as it arrives: text in `content`, tool-call fragments as
`tool_call_chunks` keyed by `index` (so parallel calls add up apart), and reasoning in
`additional_kwargs["reasoning_content"]` (where `content_blocks` finds it, and never in
`content`).

LangChain adds chunks up with `merge_dicts`, which concatenates repeated strings: Together
sends `finish_reason: "tool_calls"` on two chunks of a tool-call stream, and a client that
copies it onto both ends up with `"tool_callstool_calls"`. So the finish reason, model, id,
seed, log-probabilities and usage are remembered and put on the last chunk only, with
`chunk_position="last"`. Whatever a finish-reason chunk carries (a final token, the tool
call's arguments) is held until the stream ends, normally in the same read, so it goes out
on that last chunk instead of leaving an empty one behind; a stream that goes on after a
finish reason loses nothing, the held part goes out with the next chunk.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_together_stream._wire.chat import ChatDelta, ToolCallDelta
from langchain_together_stream.errors import TogetherStreamError

PROVIDER = "together"
"""`response_metadata["model_provider"]` of every answer."""


class _Held:
    """Parts of finish-reason chunks waiting for the end of the stream (or the next chunk)."""

    __slots__ = ("content", "reasoning", "tool_calls")

    def __init__(self) -> None:
        self.content = ""
        self.reasoning = ""
        self.tool_calls: list[ToolCallDelta] = []

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls)

    def take(self, delta: ChatDelta) -> None:
        self.content += delta.content
        self.reasoning += delta.reasoning
        self.tool_calls += delta.tool_calls


class ChatAssembler:
    """Turns one stream's Together chat deltas into LangChain chunks; remembers the text."""

    __slots__ = (
        "_finish_reason",
        "_held",
        "_id",
        "_logprobs",
        "_model",
        "_seed",
        "_texts",
        "_usage",
        "_with_logprobs",
    )

    def __init__(self, *, model: str, with_logprobs: bool) -> None:
        """Start an empty stream.

        Args:
            model: The requested model, reported when the stream names none.
            with_logprobs: Whether log-probabilities were asked for.
        """
        self._texts: list[str] = []
        self._held = _Held()
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model = model
        self._id: str | None = None
        self._seed: int | float | None = None
        self._with_logprobs = with_logprobs
        self._logprobs: list[tuple[str, float]] = []

    @property
    def partial_text(self) -> str:
        """All answer text received so far, including held text."""
        return "".join(self._texts) + self._held.content

    def add(self, delta: ChatDelta) -> ChatGenerationChunk | None:
        """Take one Together delta.

        Args:
            delta: The parsed chunk.

        Returns:
            The LangChain chunk to emit now, or None (nothing new, or held until the end).
        """
        if delta.model:
            self._model = delta.model
        if delta.id:
            self._id = delta.id
        if delta.usage is not None:
            self._usage = delta.usage
        if delta.seed is not None:
            self._seed = delta.seed
        if self._with_logprobs and delta.logprobs is not None:
            self._logprobs += _logprob_pairs(delta.logprobs, delta.content)
        if delta.finish_reason is not None:
            self._finish_reason = delta.finish_reason
            self._held.take(delta)
            return None
        if self._held:
            self._held.take(delta)
            delta, self._held = _as_delta(self._held), _Held()
        if not (delta.content or delta.reasoning or delta.tool_calls):
            return None
        return self._chunk(delta.content, delta.reasoning, delta.tool_calls)

    def finish(self, *, saw_done: bool) -> ChatGenerationChunk:
        """End the stream: the last chunk, with any held parts and all the metadata.

        Args:
            saw_done: Whether `[DONE]` arrived (else the body simply ended).

        Returns:
            The last chunk (`chunk_position="last"`), possibly with empty content.

        Raises:
            TogetherStreamError: The body ended with neither `[DONE]` nor a finish reason.
        """
        if not saw_done and self._finish_reason is None:
            msg = (
                "Together's stream ended without [DONE] or a finish reason; the answer is "
                "incomplete."
            )
            raise TogetherStreamError(msg, request_id=self._id)
        held, self._held = self._held, _Held()
        metadata: dict[str, Any] = {}
        if self._finish_reason is not None:
            metadata["finish_reason"] = self._finish_reason
        metadata["model_name"] = self._model
        metadata["model_provider"] = PROVIDER
        if self._id is not None:
            metadata["id"] = self._id
        if self._seed is not None:
            metadata["seed"] = self._seed
        if self._with_logprobs and self._logprobs:
            tokens, token_logprobs = zip(*self._logprobs, strict=True)
            metadata["logprobs"] = {"tokens": [*tokens], "token_logprobs": [*token_logprobs]}
        return self._chunk(
            held.content,
            held.reasoning,
            tuple(held.tool_calls),
            last=True,
            response_metadata=metadata,
            usage_metadata=None if self._usage is None else usage_metadata(self._usage),
        )

    def _chunk(
        self,
        content: str,
        reasoning: str,
        tool_calls: tuple[ToolCallDelta, ...],
        *,
        last: bool = False,
        response_metadata: dict[str, Any] | None = None,
        usage_metadata: UsageMetadata | None = None,
    ) -> ChatGenerationChunk:
        if content:
            self._texts.append(content)
        if not (reasoning or tool_calls or last):
            # Most chunks carry text only; every further argument costs pydantic work.
            return ChatGenerationChunk(message=AIMessageChunk(content=content, id=self._id))
        message = AIMessageChunk(
            content=content,
            additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
            tool_call_chunks=_tool_call_chunks(tool_calls) if tool_calls else [],
            response_metadata=response_metadata or {},
            usage_metadata=usage_metadata,
            id=self._id,
            chunk_position="last" if last else None,
        )
        return ChatGenerationChunk(message=message)


def _as_delta(held: _Held) -> ChatDelta:
    return ChatDelta(
        content=held.content, reasoning=held.reasoning, tool_calls=tuple(held.tool_calls)
    )


def _tool_call_chunks(tool_calls: tuple[ToolCallDelta, ...]) -> list[ToolCallChunk]:
    # Fragments of one call within a single LangChain chunk must be joined here: LangChain
    # merges by index only across chunks, and would parse two same-index entries apart.
    merged: dict[int, ToolCallChunk] = {}
    for call in tool_calls:
        known = merged.get(call.index)
        if known is None:
            merged[call.index] = tool_call_chunk(
                name=call.name, args=call.arguments, id=call.id, index=call.index
            )
            continue
        known["id"] = known["id"] or call.id
        known["name"] = known["name"] or call.name
        if call.arguments:
            known["args"] = (known["args"] or "") + call.arguments
    return list(merged.values())


def usage_metadata(usage: dict[str, Any]) -> UsageMetadata:
    """LangChain's usage record from Together's `usage` object.

    Args:
        usage: Together's counts: `prompt_tokens`, `completion_tokens`, `total_tokens`, and
            `cached_tokens` at the top level (or OpenAI's `prompt_tokens_details`).

    Returns:
        Input, output and total tokens, with `input_token_details.cache_read` when Together
        reported cached tokens and `output_token_details.reasoning` when it reported
        reasoning tokens.
    """
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    total = usage.get("total_tokens")
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens if total is None else _count(total),
    )
    cached = usage.get("cached_tokens")
    if cached is None:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        result["input_token_details"] = InputTokenDetails(cache_read=_count(cached))
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        result["output_token_details"] = OutputTokenDetails(reasoning=_count(reasoning))
    return result


def _count(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def _logprob_pairs(logprobs: object, content: str) -> list[tuple[str, float]]:
    # Streams carry a bare number per token (together-python's type); the non-stream shape
    # ({tokens, token_logprobs}) and OpenAI's ({content: [{token, logprob}]}) are read too.
    if isinstance(logprobs, (int, float)):
        return [(content, float(logprobs))]
    if not isinstance(logprobs, dict):
        return []
    if isinstance(entries := logprobs.get("content"), list):
        return [
            (str(entry.get("token", "")), float(entry["logprob"]))
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("logprob"), (int, float))
        ]
    tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if isinstance(tokens, list) and isinstance(values, list):
        return [
            (str(token), float(value))
            for token, value in zip(tokens, values, strict=False)
            if isinstance(value, (int, float))
        ]
    return []
