"""What every Together endpoint shares on the wire: `[DONE]` and the `error` object.

Error bodies (any status, any format a proxy may send) and error events inside a stream are
read here, for the completions and the chat endpoints alike. Knows JSON, not HTTP or SSE.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from langchain_together_stream.errors import TogetherStreamError

DONE = "[DONE]"
"""The data of the event that ends a successful stream."""

TOLERANT = ConfigDict(extra="ignore", frozen=True)
"""Model config for Together's objects: unknown fields ignored."""

_MAX_MESSAGE_CHARS = 500


class ErrorObject(BaseModel):
    """Together's `error` object, found in error bodies and in broken streams."""

    model_config = TOLERANT

    message: str = ""
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class ErrorInfo(BaseModel):
    """What an error body says, whatever its format."""

    model_config = ConfigDict(frozen=True)

    message: str
    type: str | None = None
    code: str | None = None
    request_id: str | None = None


def invalid_event(event: str, data: str, *, what: str) -> TogetherStreamError:
    """The error for an event that does not validate as a chunk of the stream.

    Args:
        event: The SSE event type.
        data: The event's data.
        what: What the event should have been, e.g. "completion chunk".

    Returns:
        The error to raise (from the validation error, or from None for `event: error`,
        whose data is the message).
    """
    if event == "error":
        msg = f"Together sent an error event: {data[:500]}"
        return TogetherStreamError(msg, error_type="error")
    msg = f"Together sent an event that is not a valid {what}: {data[:200]!r}"
    return TogetherStreamError(msg)


def stream_error(
    error: dict[str, Any] | str | None, data: str, *, request_id: str | None
) -> TogetherStreamError:
    """The error for an error object (or `event: error`) inside a stream.

    Args:
        error: The chunk's `error` value, if any.
        data: The event's whole data, used when the object says nothing.
        request_id: The chunk's id, if any.

    Returns:
        The error to raise.
    """
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


def finish_reason_error(request_id: str | None) -> TogetherStreamError:
    """The error for `finish_reason: "error"`.

    Args:
        request_id: The chunk's id, if any.

    Returns:
        The error to raise.
    """
    msg = "Together ended the generation with finish_reason 'error'."
    return TogetherStreamError(msg, error_type="error", request_id=request_id)


def several_choices_error(request_id: str | None) -> TogetherStreamError:
    """The error for a stream carrying more than one choice.

    Args:
        request_id: The chunk's id, if any.

    Returns:
        The error to raise.
    """
    msg = (
        "Together streamed more than one choice; streaming supports n=1 only "
        "(several choices would interleave into one text)."
    )
    return TogetherStreamError(msg, request_id=request_id)


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
