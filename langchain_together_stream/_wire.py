"""Together's request and response shapes; knows JSON, not HTTP or SSE framing.

The models are tolerant of every shape Together has sent (see the recordings in
`shared/conformance/together/`): text in `choices[i].text`, `choices[i].delta.content` or a
top-level `token.text`; `finish_reason` and `seed` in the choice or at the top level; `usage`
on the last chunk (which may still carry a token); seeds above 2**63; unknown fields ignored.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from langchain_together_stream.errors import TogetherStreamError

DONE = "[DONE]"
"""The data of the event that ends a successful stream."""

_TOLERANT = ConfigDict(extra="ignore", frozen=True)


class Usage(BaseModel):
    """Token counts, sent on the final chunk."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Delta(BaseModel):
    model_config = _TOLERANT

    content: str | None = None
    token_id: int | None = None


class _Token(BaseModel):
    model_config = _TOLERANT

    id: int | None = None
    text: str | None = None
    logprob: float | None = None


class _Choice(BaseModel):
    model_config = _TOLERANT

    index: int = 0
    text: str | None = None
    delta: _Delta | None = None
    finish_reason: str | None = None
    # Together writes seeds like JavaScript doubles, sometimes above 2**63.
    seed: int | float | None = None
    # A per-token float in streams (together-python's type); anything else is left alone.
    logprobs: float | dict[str, Any] | None = None


class ErrorObject(BaseModel):
    """Together's `error` object, found in error bodies and in broken streams."""

    model_config = _TOLERANT

    message: str = ""
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class StreamChunk(BaseModel):
    """One `data:` payload of a completion stream, in any shape Together has used."""

    model_config = _TOLERANT

    id: str | None = None
    request_id: str | None = None
    model: str | None = None
    choices: list[_Choice] = []
    token: _Token | None = None
    finish_reason: str | None = None
    seed: int | float | None = None
    usage: Usage | None = None
    error: ErrorObject | str | None = None

    @property
    def _choice(self) -> _Choice | None:
        return self.choices[0] if self.choices else None

    @property
    def text(self) -> str:
        """The token text, wherever this chunk shape keeps it."""
        choice = self._choice
        if choice is not None:
            if choice.text is not None:
                return choice.text
            if choice.delta is not None and choice.delta.content is not None:
                return choice.delta.content
        if self.token is not None and self.token.text is not None:
            return self.token.text
        return ""

    @property
    def chunk_finish_reason(self) -> str | None:
        """The finish reason from the choice, else from the top level."""
        choice = self._choice
        if choice is not None and choice.finish_reason:
            return choice.finish_reason
        return self.finish_reason or None

    @property
    def chunk_seed(self) -> int | float | None:
        """The seed from the choice, else from the top level."""
        choice = self._choice
        if choice is not None and choice.seed is not None:
            return choice.seed
        return self.seed

    @property
    def logprob(self) -> float | None:
        """The token's log-probability, when Together sent one."""
        choice = self._choice
        if choice is not None and isinstance(choice.logprobs, float):
            return choice.logprobs
        return self.token.logprob if self.token is not None else None


def parse_chunk(event: str, data: str) -> StreamChunk:
    """Parse one SSE event of a completion stream.

    Args:
        event: The SSE event type (`"message"` when the server named none).
        data: The event's data, already known not to be `[DONE]`.

    Returns:
        The parsed chunk.

    Raises:
        TogetherStreamError: The event is an error (`event: error`, an `error` object or
            `finish_reason: "error"`), is not valid JSON, or carries several choices.
    """
    try:
        chunk = StreamChunk.model_validate_json(data)
    except ValidationError as exc:
        if event == "error":
            msg = f"Together sent an error event: {data[:500]}"
            raise TogetherStreamError(msg, error_type="error") from None
        msg = f"Together sent an event that is not a valid completion chunk: {data[:200]!r}"
        raise TogetherStreamError(msg) from exc
    if chunk.error is not None or event == "error":
        raise _stream_error(chunk)
    if len(chunk.choices) > 1 or (chunk.choices and chunk.choices[0].index != 0):
        msg = (
            "Together streamed more than one choice; streaming supports n=1 only "
            "(several choices would interleave into one text)."
        )
        raise TogetherStreamError(msg, request_id=chunk.id)
    if chunk.chunk_finish_reason == "error":
        msg = "Together ended the generation with finish_reason 'error'."
        raise TogetherStreamError(msg, error_type="error", request_id=chunk.id)
    return chunk


def _stream_error(chunk: StreamChunk) -> TogetherStreamError:
    error = chunk.error
    request_id = chunk.request_id or chunk.id
    if isinstance(error, ErrorObject):
        message = error.message or "Together reported an error mid-stream."
        return TogetherStreamError(
            f"Together reported an error mid-stream: {message}",
            error_type=error.type,
            request_id=request_id,
        )
    message = error or "Together sent an error event."
    return TogetherStreamError(
        f"Together reported an error mid-stream: {message}", request_id=request_id
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
