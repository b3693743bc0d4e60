"""Each event reaches the caller as soon as its bytes do, whatever the server's framing.

A reader may regroup bytes to save work per token, but never by waiting for more of them: an
HTTP chunk that carries several events written at different times, an event split over two
chunks, and a body without chunked framing (HTTP/1.0 style, no Content-Length, ended by
closing the connection) must each deliver every event as it arrives.

Every test holds the rest of the body for `HOLD` seconds, far beyond the 2 s idle timeout,
right after the events it expects. The caller takes those tokens and hangs up; the server
must see the hang-up during the hold. A reader that waited for the rest of a chunk or of the
body would instead see nothing and time out. So the tests check causes, not clocks, and a
loaded machine cannot make them flaky.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import make_llm
from tests.scripted_server import SSE, Reply, completion_chunk

HOLD = 10.0


def event(text: str) -> bytes:
    """One Together completion event carrying `text`."""
    return b"data: " + json.dumps(completion_chunk(text)).encode() + b"\n\n"


def take_sync(llm: Any, count: int) -> list[str]:
    tokens = llm.stream("x")
    try:
        return [next(tokens) for _ in range(count)]
    finally:
        tokens.close()


def take_async(llm: Any, count: int) -> list[str]:
    async def take() -> list[str]:
        tokens = llm.astream("x")
        try:
            return [await anext(tokens) for _ in range(count)]
        finally:
            await tokens.aclose()

    return asyncio.run(take())


TAKE = pytest.mark.parametrize("take", [take_sync, take_async], ids=["sync", "async"])


def assert_delivered_during_the_hold(serve: Any, reply: Reply, take: Any, expected: list[str]):
    server = serve(reply)
    assert take(make_llm(server, max_retries=0), len(expected)) == expected
    # The hang-up came during the hold, so the tokens came before the rest of the body.
    assert server.wait_disconnect(timeout=HOLD / 2) is not None


@TAKE
@pytest.mark.parametrize("held_after", [1, 2])
def test_events_grouped_in_one_http_chunk_are_dispatched_as_they_arrive(
    serve: Any, take: Any, held_after: int
) -> None:
    # One chunk announces all three events; the server writes them one at a time.
    events = [event("a"), event("b"), event("c")]
    size = sum(map(len, events))
    writes: list[bytes | float] = [b"%x\r\n" % size + events[0], 0.2, events[1], 0.2, events[2]]
    writes.insert(2 * held_after, HOLD)
    writes.append(b"\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (14, b"data: [DONE]\n\n"))
    reply = Reply(headers=[*SSE, ("Transfer-Encoding", "chunked")], body=writes, framing="close")
    assert_delivered_during_the_hold(serve, reply, take, ["a", "b", "c"][:held_after])


@TAKE
def test_an_event_split_over_http_chunks_is_dispatched_when_its_last_byte_arrives(
    serve: Any, take: Any
) -> None:
    first, second = event("a"), event("b")
    # Each bytes item is one HTTP chunk: the first event ends inside the second chunk, which
    # also starts the next event.
    writes: list[bytes | float] = [first[:20], 0.2, first[20:] + second[:15], HOLD, second[15:]]
    assert_delivered_during_the_hold(serve, Reply(body=writes), take, ["a"])


@TAKE
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_a_close_delimited_body_delivers_each_event_as_it_arrives(
    serve: Any, take: Any, version: str
) -> None:
    first, second, third = event("a"), event("b"), event("c")
    # No chunked framing and no Content-Length: the body ends when the connection closes.
    writes: list[bytes | float] = [first + second[:10], 0.2, second[10:], HOLD, third]
    reply = Reply(body=writes, framing="close", version=version)
    assert_delivered_during_the_hold(serve, reply, take, ["a", "b"])


@TAKE
def test_a_close_delimited_body_read_to_its_end_is_complete(serve: Any, take: Any) -> None:
    final = completion_chunk("c", "stop")
    wire = event("a") + event("b") + b"data: " + json.dumps(final).encode() + b"\n\n"
    reply = Reply(body=[wire[:7], 0.05, wire[7:]], framing="close", version="1.0")
    server = serve(reply)
    assert take(make_llm(server), 3) == ["a", "b", "c"]
