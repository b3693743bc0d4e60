"""The optional overall deadline, on the sync and the async path."""

import asyncio
import time
from typing import Any

import pytest

from langchain_together_stream import TogetherServerError, TogetherTimeoutError
from tests.conftest import make_llm
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream

# A token every 0.1 s for 10 s: never idle long enough for the idle timeout to fire.
TRICKLE: list[bytes | float] = []
for index in range(100):
    TRICKLE += [*sse_body(completion_chunk(f" t{index}"), done=False), 0.1]


def invoke_sync(llm: Any) -> None:
    llm.invoke("x")


def invoke_async(llm: Any) -> None:
    asyncio.run(llm.ainvoke("x"))


@pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])
def test_a_slow_stream_stops_at_the_deadline(serve: Any, invoke: Any) -> None:
    server = serve(Reply(body=TRICKLE))
    llm = make_llm(server, deadline=0.5, timeout=(2.0, 2.0), max_retries=2)
    started = time.monotonic()
    with pytest.raises(TogetherTimeoutError, match=r"deadline of 0\.5 s") as info:
        invoke(llm)
    assert time.monotonic() - started < 5  # the stream had 10 s to go
    assert info.value.partial_text.startswith(" t0 t1")  # the tokens before it are kept
    assert server.wait_disconnect(timeout=2.0) is not None  # and the connection is closed
    assert len(server.seen) == 1  # a deadline is never retried


@pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])
def test_no_retry_wait_runs_past_the_deadline(serve: Any, invoke: Any) -> None:
    busy = Reply(
        status=503,
        headers=[("Content-Type", "application/json"), ("Retry-After", "5")],
        body=[b'{"error": {"message": "Overloaded", "type": "server_error"}}'],
        framing="length",
    )
    server = serve(busy, Reply(body=token_stream(["ok"])))
    llm = make_llm(server, deadline=1.0, max_retries=3)
    started = time.monotonic()
    with pytest.raises(TogetherServerError):
        invoke(llm)
    assert time.monotonic() - started < 1.0  # it did not sleep the 5 s it was told
    assert len(server.seen) == 1


@pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])
def test_a_call_within_its_deadline_is_unaffected(serve: Any, invoke: Any) -> None:
    server = serve(Reply(body=token_stream(["a", "b", "c"])))
    invoke(make_llm(server, deadline=30.0))
    assert len(server.seen) == 1


# A 400 whose envelope arrives a byte every 0.05 s: about a minute in all, never idle.
DRIPPED_ERROR: list[bytes | float] = []
for byte in b'{"error": {"message": "' + b"x" * 1200 + b'"}}':
    DRIPPED_ERROR += [bytes([byte]), 0.05]


@pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])
@pytest.mark.parametrize(
    "reply",
    [
        # Status line and headers a byte every 0.1 s: about 10 s, never idle for long.
        Reply(head_drip=0.1, body=token_stream(["late"])),
        Reply(status=400, headers=[("Content-Type", "application/json")], body=DRIPPED_ERROR),
    ],
    ids=["dripping-headers", "dripping-error-body"],
)
def test_the_deadline_covers_the_status_line_headers_and_error_body(
    serve: Any, invoke: Any, reply: Reply
) -> None:
    server = serve(reply)
    llm = make_llm(server, deadline=2.0, timeout=(30.0, 30.0), max_retries=2)
    started = time.monotonic()
    with pytest.raises(TogetherTimeoutError, match=r"deadline of 2\.0 s"):
        invoke(llm)
    assert time.monotonic() - started < 4.0  # the deadline, with a generous margin
    assert server.wait_disconnect(timeout=2.0) is not None  # the connection was dropped
    assert len(server.seen) == 1  # a call past its deadline is not retried
