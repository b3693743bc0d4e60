"""Together's request and response shapes; knows JSON, not HTTP or SSE framing.

The schemas are tolerant of every shape Together has sent (see the recordings in
`shared/conformance/together/`): text in `choices[i].text`, `choices[i].delta.content` or a
top-level `token.text`; `finish_reason` and `seed` in the choice or at the top level; `usage`
on the last chunk (which may still carry a token); seeds above 2**63; unknown fields ignored.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import msgspec
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from langchain_together_stream.errors import TogetherStreamError

DONE = "[DONE]"
"""The data of the event that ends a successful stream."""

_TOLERANT = ConfigDict(extra="ignore", frozen=True)


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


_CHUNK = TypeAdapter(_WireChunk)
# The same schema decoded by msgspec: the same dicts, about 3x faster per token. msgspec is
# strict where pydantic is lax (`true` for an int, a float beyond range): whatever it refuses
# goes to the pydantic adapter, so every shape pydantic accepts still validates.
_FAST_CHUNK = msgspec.json.Decoder(_WireChunk)


class ErrorObject(BaseModel):
    """Together's `error` object, found in error bodies and in broken streams."""

    model_config = _TOLERANT

    message: str = ""
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class StreamChunk(NamedTuple):
    """One completion chunk, normalised: where Together put each field no longer matters."""

    text: str
    """The token text ("" when the chunk carries none)."""
    finish_reason: str | None
    """Why generation ended, on the last chunk(s) only."""
    logprob: float | None
    """The token's log-probability, when Together sent one."""
    usage: dict[str, Any] | None
    """Token counts, on the final chunk."""
    model: str | None
    id: str | None
    seed: int | float | None


_new_chunk = StreamChunk._make


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
        chunk = _decode(data)
    except ValidationError as exc:
        if event == "error":
            msg = f"Together sent an error event: {data[:500]}"
            raise TogetherStreamError(msg, error_type="error") from None
        msg = f"Together sent an event that is not a valid completion chunk: {data[:200]!r}"
        raise TogetherStreamError(msg) from exc
    chunk_id = chunk.get("id") or chunk.get("request_id")
    if event == "error" or chunk.get("error") is not None:
        raise _stream_error(chunk.get("error"), data, request_id=chunk_id)
    choices = chunk.get("choices")
    choice: _WireChoice = {}
    if choices:
        choice = choices[0]
        if len(choices) > 1 or (choice.get("index") or 0) != 0:
            msg = (
                "Together streamed more than one choice; streaming supports n=1 only "
                "(several choices would interleave into one text)."
            )
            raise TogetherStreamError(msg, request_id=chunk_id)
    token = chunk.get("token") or {}
    text = choice.get("text")
    if text is None:
        text = (choice.get("delta") or {}).get("content")
        if text is None:
            text = token.get("text") or ""
    finish_reason = choice.get("finish_reason") or chunk.get("finish_reason") or None
    if finish_reason == "error":
        msg = "Together ended the generation with finish_reason 'error'."
        raise TogetherStreamError(msg, error_type="error", request_id=chunk_id)
    logprob = choice.get("logprobs")
    seed = choice.get("seed")
    # Positional: a keyword call to a NamedTuple costs more than the rest of this function.
    return _new_chunk(
        (
            text,
            finish_reason,
            logprob if isinstance(logprob, float) else token.get("logprob"),
            chunk.get("usage"),
            chunk.get("model"),
            chunk_id,
            seed if seed is not None else chunk.get("seed"),
        )
    )


def _decode(data: str) -> _WireChunk:
    try:
        return _FAST_CHUNK.decode(data)
    except msgspec.MsgspecError:
        return _CHUNK.validate_json(data)


def _stream_error(
    error: dict[str, Any] | str | None, data: str, *, request_id: str | None
) -> TogetherStreamError:
    message, error_type = (error, None) if isinstance(error, str) else (data[:500], None)
    if isinstance(error, dict):
        try:
            parsed = ErrorObject.model_validate(error)
        except ValidationError:
            parsed = ErrorObject()
        message, error_type = parsed.message or data[:500], parsed.type
    return TogetherStreamError(
        f"Together reported an error mid-stream: {message}",
        error_type=error_type,
        request_id=request_id,
    )


class ErrorInfo(BaseModel):
    """What an error body says, whatever its format."""

    model_config = ConfigDict(frozen=True)

    message: str
    type: str | None = None
    code: str | None = None
    request_id: str | None = None


_MAX_MESSAGE_CHARS = 500


def parse_error_body(body: bytes, *, fallback: str) -> ErrorInfo:
    """Read an error body: Together's JSON envelope, plain text, HTML or nothing.

    Args:
        body: The first bytes of the response body.
        fallback: The message to use when the body says nothing useful.

    Returns:
        The message, type, code and request id found.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        request_id = _str_or_none(document.get("id") or document.get("request_id"))
        if isinstance(error, dict):
            parsed = ErrorObject.model_validate(error)
            return ErrorInfo(
                message=parsed.message or fallback,
                type=parsed.type,
                code=None if parsed.code is None else str(parsed.code),
                request_id=request_id,
            )
        if isinstance(error, str):
            return ErrorInfo(message=error, request_id=request_id)
        if isinstance(document.get("message"), str):
            return ErrorInfo(message=document["message"], request_id=request_id)
    if not text or text.lstrip().startswith("<"):
        # An empty body or an HTML page from a proxy: the status says more than the markup.
        return ErrorInfo(message=fallback)
    return ErrorInfo(message=text[:_MAX_MESSAGE_CHARS])


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
