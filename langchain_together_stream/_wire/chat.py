"""Together's chat stream (`/v1/chat/completions`): one event's JSON to one `ChatDelta`.

Knows JSON, not HTTP, SSE framing or LangChain. The schema is tolerant of every shape in the
real recordings (`shared/conformance/together/03-12`): `delta.content` (with a duplicate in
`choices[0].text`), `delta.tool_calls[index, id, function{name, arguments}]`, reasoning in
`delta.reasoning` (or `delta.reasoning_content`, as other OpenAI-compatible servers send it),
`finish_reason` repeated on two chunks of a tool-call stream, `usage` on the finish chunk
with `cached_tokens` at its top level (or inside `choices[0]`, as some models put it), seeds
above 2**63, and keys that are absent, `null` or unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from typing_extensions import TypedDict

from langchain_together_stream._wire._decode import SchemaDecoder
from langchain_together_stream._wire.errors import (
    finish_reason_error,
    invalid_event,
    several_choices_error,
    stream_error,
)


# TypedDicts validate straight from JSON into plain dicts (see `_wire`); every key is optional.
class _WireFunction(TypedDict, total=False):
    name: str | None
    arguments: str | None


class _WireToolCall(TypedDict, total=False):
    index: int | None
    id: str | None
    type: str | None
    function: _WireFunction | None


class _WireDelta(TypedDict, total=False):
    content: str | None
    reasoning: str | None
    reasoning_content: str | None
    tool_calls: list[_WireToolCall] | None


class _WireChoice(TypedDict, total=False):
    index: int | None
    text: str | None
    delta: _WireDelta | None
    finish_reason: str | None
    seed: int | float | None
    logprobs: float | dict[str, Any] | list[Any] | None
    usage: dict[str, Any] | None


class _WireChunk(TypedDict, total=False):
    id: str | None
    model: str | None
    choices: list[_WireChoice] | None
    finish_reason: str | None
    seed: int | float | None
    usage: dict[str, Any] | None
    error: dict[str, Any] | str | None


_CHUNK = SchemaDecoder(_WireChunk)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One fragment of one tool call; fragments with the same `index` add up to a call."""

    index: int
    """Which call this fragment belongs to (parallel calls have different indexes)."""
    id: str | None
    """The call's id, on its first fragment."""
    name: str | None
    """The function's name, on its first fragment."""
    arguments: str | None
    """A piece of the JSON argument string."""


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One chat chunk, normalised: where Together put each field no longer matters."""

    content: str = ""
    """Answer text ("" when the chunk carries none)."""
    reasoning: str = ""
    """Reasoning text ("" when none)."""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    """Tool-call fragments, in the order sent."""
    finish_reason: str | None = None
    """Why generation ended, on the last chunk(s) only."""
    usage: dict[str, Any] | None = None
    """Token counts, on the finish chunk."""
    model: str | None = None
    """The model that answered."""
    id: str | None = None
    """Together's id for the completion."""
    seed: int | float | None = None
    """The sampling seed, on the last chunk."""
    logprobs: float | dict[str, Any] | list[Any] | None = None
    """The chunk's log-probabilities, in whatever form Together sent them."""


def parse_chat_chunk(event: str, data: str) -> ChatDelta:
    """Parse one SSE event of a chat stream.

    Args:
        event: The SSE event type (`"message"` when the server named none).
        data: The event's data, already known not to be `[DONE]`.

    Returns:
        The normalised chunk.

    Raises:
        TogetherStreamError: The event is an error (`event: error`, an `error` object or
            `finish_reason: "error"`), is not a valid chunk, or carries several choices.
    """
    try:
        chunk = _CHUNK.decode(data)
    except ValidationError as exc:
        cause = None if event == "error" else exc
        raise invalid_event(event, data, what="chat chunk") from cause
    chunk_id = chunk.get("id")
    if event == "error" or chunk.get("error") is not None:
        raise stream_error(chunk.get("error"), data, request_id=chunk_id)
    choice = _only_choice(chunk.get("choices"), chunk_id)
    delta = choice.get("delta")
    tool_calls: tuple[ToolCallDelta, ...]
    if delta is None:
        content, reasoning, tool_calls = choice.get("text") or "", "", ()
    else:
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning") or delta.get("reasoning_content") or ""
        wire_calls = delta.get("tool_calls")
        tool_calls = _tool_calls(wire_calls) if wire_calls else ()
    finish_reason = choice.get("finish_reason") or chunk.get("finish_reason") or None
    if finish_reason == "error":
        raise finish_reason_error(chunk_id)
    seed = choice.get("seed")
    usage = chunk.get("usage")
    return ChatDelta(
        content=content,
        reasoning=reasoning,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=usage if usage is not None else choice.get("usage"),
        model=chunk.get("model"),
        id=chunk_id,
        seed=seed if seed is not None else chunk.get("seed"),
        logprobs=choice.get("logprobs"),
    )


_NO_CHOICE: _WireChoice = {}


def _only_choice(choices: list[_WireChoice] | None, chunk_id: str | None) -> _WireChoice:
    if not choices:
        return _NO_CHOICE
    choice = choices[0]
    if len(choices) > 1 or (choice.get("index") or 0) != 0:
        raise several_choices_error(chunk_id)
    return choice


def _tool_calls(wire_calls: list[_WireToolCall]) -> tuple[ToolCallDelta, ...]:
    calls = []
    for position, call in enumerate(wire_calls):
        function = call.get("function") or {}
        index = call.get("index")
        calls.append(
            ToolCallDelta(
                # Every recording has an index; a server that omits it sends whole calls in
                # order, so the position keeps parallel calls apart.
                index=position if index is None else index,
                id=call.get("id") or None,
                name=function.get("name") or None,
                arguments=function.get("arguments"),
            )
        )
    return tuple(calls)
