"""The completions endpoint's stream chunks (`/v1/completions`, legacy `/inference`).

The schema is tolerant of every shape Together has sent (see the recordings in
`shared/conformance/together/`): text in `choices[i].text`, `choices[i].delta.content` or a
top-level `token.text`; `finish_reason` and `seed` in the choice or at the top level; `usage`
on the last chunk (which may still carry a token); seeds above 2**63; unknown fields ignored.
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


# The stream's schema as TypedDicts: pydantic validates them straight from JSON into plain
# dicts, twice as fast as building nested model instances for every token. Every key is
# optional and unknown keys are ignored, so any shape Together has used validates.
class _WireDelta(TypedDict, total=False):
    content: str | None


class _WireToken(TypedDict, total=False):
    text: str | None
    logprob: float | None


class _WireChoice(TypedDict, total=False):
    index: int | None
    text: str | None
    delta: _WireDelta | None
    finish_reason: str | None
    # Together writes seeds like JavaScript doubles, sometimes above 2**63.
    seed: int | float | None
    # A per-token float in streams (together-python's type); other shapes are not used.
    logprobs: float | dict[str, Any] | list[Any] | None


class _WireChunk(TypedDict, total=False):
    id: str | None
    request_id: str | None
    model: str | None
    choices: list[_WireChoice] | None
    token: _WireToken | None
    finish_reason: str | None
    seed: int | float | None
    usage: dict[str, Any] | None
    error: dict[str, Any] | str | None


_CHUNK = SchemaDecoder(_WireChunk)


@dataclass(slots=True)
class StreamChunk:
    """One completion chunk, normalised: where Together put each field no longer matters."""

    text: str
    """The token text ("" when the chunk carries none)."""
    finish_reason: str | None = None
    """Why generation ended, on the last chunk(s) only."""
    logprob: float | None = None
    """The token's log-probability, when Together sent one."""
    usage: dict[str, Any] | None = None
    """Token counts, on the final chunk."""
    model: str | None = None
    """The model that answered."""
    id: str | None = None
    """Together's id for the generation."""
    seed: int | float | None = None
    """The seed Together sampled with."""


def parse_chunk(event: str, data: str) -> StreamChunk:
    """Parse one SSE event of a completion stream.

    Reads text from `choices[0].text`, then `choices[0].delta.content`, then `token.text`;
    `finish_reason` and `seed` from the choice, then the top level.

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
        raise invalid_event(event, data, what="completion chunk") from cause
    chunk_id = chunk.get("id") or chunk.get("request_id")
    if event == "error" or chunk.get("error") is not None:
        raise stream_error(chunk.get("error"), data, request_id=chunk_id)
    choices = chunk.get("choices")
    choice: _WireChoice = {}
    if choices:
        choice = choices[0]
        if len(choices) > 1 or (choice.get("index") or 0) != 0:
            raise several_choices_error(chunk_id)
    token = chunk.get("token") or {}
    text = choice.get("text")
    if text is None:
        text = (choice.get("delta") or {}).get("content")
        if text is None:
            text = token.get("text") or ""
    finish_reason = choice.get("finish_reason") or chunk.get("finish_reason") or None
    if finish_reason == "error":
        raise finish_reason_error(chunk_id)
    logprob = choice.get("logprobs")
    seed = choice.get("seed")
    return StreamChunk(
        text=text,
        finish_reason=finish_reason,
        logprob=logprob if isinstance(logprob, float) else token.get("logprob"),
        usage=chunk.get("usage"),
        model=chunk.get("model"),
        id=chunk_id,
        seed=seed if seed is not None else chunk.get("seed"),
    )
