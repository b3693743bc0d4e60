"""Error bodies are read whole, however TCP splits them, and compressed streams are named.

Each test runs on the sync and the async path over a real loopback socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherBadRequestError,
    TogetherRateLimitError,
    TogetherStreamError,
)
from tests.conftest import make_llm
from tests.scripted_server import SSE, Reply, token_stream

_JSON = [("Content-Type", "application/json")]


def invoke_sync(llm: Any) -> str:
    return str(llm.invoke("x"))


def invoke_async(llm: Any) -> str:
    return str(asyncio.run(llm.ainvoke("x")))


BOTH = pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])
FRAMINGS = pytest.mark.parametrize("framing", ["length", "chunked"])


def _split(status: int, envelope: dict[str, Any], framing: Any, *extra: tuple[str, str]) -> Reply:
    """`envelope` as JSON in two writes 50 ms apart, cut inside the error object."""
    wire = json.dumps(envelope).encode()
    cut = wire.index(b'"error"') + len(b'"error": {')
    return Reply(
        status=status,
        headers=[*_JSON, *extra],
        body=[wire[:cut], 0.05, wire[cut:]],
        framing=framing,
    )


@BOTH
@FRAMINGS
def test_a_400_split_over_two_writes_keeps_its_message_and_type(
    serve: Any, invoke: Any, framing: str
) -> None:
    envelope = {
        "id": "req-9",
        "error": {"message": "prompt is too long", "type": "invalid_request_error"},
    }
    server = serve(_split(400, envelope, framing))
    with pytest.raises(TogetherBadRequestError) as info:
        invoke(make_llm(server, max_retries=2))
    assert info.value.message == "prompt is too long"
    assert info.value.error_type == "invalid_request_error"
    assert info.value.request_id == "req-9"
    assert len(server.seen) == 1


@BOTH
@FRAMINGS
def test_a_credit_limit_429_split_over_two_writes_is_not_retried(
    serve: Any, invoke: Any, framing: str
) -> None:
    envelope = {"error": {"message": "Credit limit exceeded", "type": "credit_limit"}}
    limited = _split(429, envelope, framing, ("Retry-After", "0"))
    server = serve(limited, Reply(body=token_stream(["ok"])))
    with pytest.raises(TogetherRateLimitError) as info:
        invoke(make_llm(server, max_retries=3))
    assert info.value.error_type == "credit_limit"
    assert info.value.message == "Credit limit exceeded"
    assert len(server.seen) == 1  # the README promises: never retried


@BOTH
def test_a_dripping_error_body_is_bounded_by_the_read_timeout(serve: Any, invoke: Any) -> None:
    # One byte every 0.05 s never trips a 0.5 s idle timeout; the body would take 50 s.
    drip: list[bytes | float] = []
    for byte in b'{"error": {"message": "' + b"x" * 1000 + b'"}}':
        drip += [bytes([byte]), 0.05]
    server = serve(Reply(status=400, headers=_JSON, body=drip, framing="length"))
    started = time.monotonic()
    with pytest.raises(TogetherBadRequestError):
        invoke(make_llm(server, timeout=(2.0, 0.5), max_retries=0))
    assert time.monotonic() - started < 5  # about one read timeout, not 50 s
    assert server.wait_disconnect(timeout=2.0) is not None  # the rest is never read


@BOTH
@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
def test_a_compressed_event_stream_is_refused_by_name(
    serve: Any, invoke: Any, encoding: str
) -> None:
    reply = Reply(headers=[*SSE, ("Content-Encoding", encoding)], body=[b"\x1f\x8b\x08\x00junk"])
    server = serve(reply, Reply(body=token_stream(["ok"])))
    llm = make_llm(server, max_retries=2)
    with pytest.raises(TogetherStreamError, match=f"Content-Encoding '{encoding}'") as info:
        invoke(llm)
    assert "[DONE]" not in str(info.value)
    assert info.value.partial_text == ""
    assert len(server.seen) == 1  # a stream error is not retried
    assert invoke(llm) == "ok"  # and the instance keeps working


@BOTH
def test_requests_ask_for_an_uncompressed_body(serve: Any, invoke: Any) -> None:
    server = serve(Reply(body=token_stream(["ok"])))
    assert invoke(make_llm(server)) == "ok"
    assert server.seen[0].headers["accept-encoding"] == "identity"
