"""Cancelling an async call at any moment closes its connection at once (README: within
100 ms) and leaves the instance working.

The moments are the ones a user pressing "stop" can hit: the TLS handshake, waiting for the
response headers, waiting for the first event, reading an error body, and the wait between
two attempts. Each is reached over a real loopback socket, the task is cancelled, and the
server must see the client leave.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from langchain_together_stream import TogetherLLM
from tests.conftest import make_llm
from tests.hostile import TEXT, TOKENS
from tests.scripted_server import Reply, ScriptedServer, Seen, StallingListener, token_stream

CLOSE_PROMISE = 0.1
"""The README's promise: the socket is closed within 100 ms of the cancel."""
MARGIN = 5
"""A loaded two-core machine may be slow; a connection left open is slower by seconds."""
_JSON = [("Content-Type", "application/json")]


async def ainvoke(llm: TogetherLLM) -> None:
    await llm.ainvoke("x")


async def astream(llm: TogetherLLM) -> None:
    async for _ in llm.astream("x"):
        pass


ENTRIES = pytest.mark.parametrize("entry", [ainvoke, astream], ids=["ainvoke", "astream"])


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    # Polls on the event loop: blocking it would also stop the client from closing.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the scripted moment was never reached"
        await asyncio.sleep(0.005)


async def _cancel(task: asyncio.Task[None]) -> float:
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return cancelled_at


def _head_sent(server: ScriptedServer, settle: float) -> Callable[[], bool]:
    # Once the server has written the head, give the client `settle` s to read it and move
    # on to the next wait (if it has not yet, the test still cancels a pending call).
    def reached() -> bool:
        sent = server.seen[0].head_sent_at if server.seen else None
        return sent is not None and time.monotonic() - sent > settle

    return reached


PHASES: dict[str, tuple[Reply, Callable[[ScriptedServer], Callable[[], bool]]]] = {
    "waiting-for-headers": (
        Reply(head_delay=30.0, body=token_stream(TOKENS)),
        lambda server: lambda: bool(server.seen),
    ),
    "waiting-for-first-event": (
        Reply(body=[30.0, *token_stream(TOKENS)]),
        lambda server: _head_sent(server, 0.1),
    ),
    "reading-an-error-body": (
        Reply(status=400, headers=_JSON, body=[b'{"error": {', 30.0, b"}}"], framing="length"),
        lambda server: _head_sent(server, 0.1),
    ),
}


@ENTRIES
@pytest.mark.parametrize("phase", list(PHASES))
def test_cancel_closes_the_connection_at_once_and_the_instance_keeps_working(
    entry: Any, phase: str
) -> None:
    hostile, reached = PHASES[phase]
    state = {"hostile": True}

    def script(seen: Seen) -> Reply:
        return hostile if state["hostile"] else Reply(body=token_stream(TOKENS))

    async def scenario(server: ScriptedServer) -> None:
        llm = make_llm(server, timeout=(30.0, 30.0), max_retries=2)
        task = asyncio.create_task(entry(llm))
        await _until(reached(server))
        cancelled_at = await _cancel(task)
        await _until(lambda: server.seen[0].disconnected_at is not None)
        closed_at = server.seen[0].disconnected_at
        assert closed_at is not None
        assert closed_at - cancelled_at < CLOSE_PROMISE * MARGIN, closed_at - cancelled_at
        state["hostile"] = False
        assert await llm.ainvoke("x") == TEXT
        assert len(server.seen) == 2  # the cancelled call made no further attempt

    with ScriptedServer(script) as server:
        asyncio.run(scenario(server))


@ENTRIES
def test_cancel_during_the_tls_handshake_closes_the_connection(entry: Any) -> None:
    async def scenario(listener: StallingListener) -> None:
        llm = TogetherLLM(
            model="test/model",
            api_key="sk-test",
            base_url=listener.url("https"),
            timeout=(30.0, 30.0),
        )
        task = asyncio.create_task(entry(llm))
        await _until(lambda: bool(listener.received and listener.received[0]))  # ClientHello
        cancelled_at = await _cancel(task)
        await _until(lambda: listener.disconnected_at[0] is not None)
        closed_at = listener.disconnected_at[0]
        assert closed_at is not None
        assert closed_at - cancelled_at < CLOSE_PROMISE * MARGIN, closed_at - cancelled_at
        assert len(listener.received) == 1

    with StallingListener() as listener:
        asyncio.run(scenario(listener))


@ENTRIES
def test_cancel_between_attempts_ends_at_once_and_sends_nothing_more(entry: Any) -> None:
    # The failed attempt's connection is already closed or idle in the pool; the call must
    # stop waiting at once and never make the attempt it was waiting for.
    busy = Reply(
        status=503,
        headers=[*_JSON, ("Retry-After", "30")],
        body=[json.dumps({"error": {"message": "busy"}}).encode()],
        framing="length",
    )
    state = {"busy": True}

    def script(seen: Seen) -> Reply:
        return busy if state["busy"] else Reply(body=token_stream(TOKENS))

    async def scenario(server: ScriptedServer) -> None:
        llm = make_llm(server, timeout=(30.0, 30.0), max_retries=2)
        task = asyncio.create_task(entry(llm))
        await _until(_head_sent(server, 0.2))
        cancelled_at = await _cancel(task)
        assert time.monotonic() - cancelled_at < CLOSE_PROMISE * MARGIN
        await asyncio.sleep(0.2)
        assert len(server.seen) == 1
        state["busy"] = False
        assert await llm.ainvoke("x") == TEXT

    with ScriptedServer(script) as server:
        asyncio.run(scenario(server))
