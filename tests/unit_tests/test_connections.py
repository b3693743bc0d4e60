"""Connections: pooling, closing on break/close/cancel, framing, threads, event loops and
processes."""

import asyncio
import gc
import multiprocessing
import threading
import time
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherLLM,
)
from tests.conftest import make_llm
from tests.hostile import KEY, TOKENS, Path
from tests.llm_helpers import paused_after_two_tokens
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream

# --- pooling, framing, closing -------------------------------------------------------------


def test_one_pooled_connection_is_reused_across_calls(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    for _ in range(3):
        llm.invoke("x")
    list(llm.stream("y"))
    assert len(server.seen) == 4
    assert server.connections == 1


def test_break_closes_the_connection_at_once_without_gc(serve: Any) -> None:
    server = serve(paused_after_two_tokens())
    gc.disable()
    try:
        for token in make_llm(server).stream("x"):
            assert token == "a"
            break
        # The server is pausing for 10 s; it sees the hang-up long before that.
        assert server.wait_disconnect(timeout=1.0) is not None
    finally:
        gc.enable()


def test_closing_the_iterator_closes_the_connection(serve: Any) -> None:
    server = serve(paused_after_two_tokens())
    gc.disable()
    try:
        tokens = make_llm(server).stream("x")
        assert next(tokens) == "a"
        tokens.close()
        assert server.wait_disconnect(timeout=1.0) is not None
    finally:
        gc.enable()


def test_tokens_arrive_before_the_body_ends_with_either_framing(serve: Any) -> None:
    # The server holds the rest of the body for 10 s after the first event. A reader that
    # buffers (iter_content, sseclient over the response) would not see "a" until then;
    # breaking on it while the server still pauses proves the token came at once.
    for framing in ("chunked", "close"):
        server = serve(
            Reply(
                body=[*sse_body(completion_chunk("a"), done=False), 10.0, *token_stream(["b"])],
                framing=framing,
            )
        )
        for token in make_llm(server).stream("x"):
            assert token == "a"
            break
        assert server.wait_disconnect(timeout=1.0) is not None, framing


def test_byte_at_a_time_and_split_utf8(serve: Any, path: Path) -> None:
    tokens = ["日本", "語", " 🎉", " done"]
    wire = b"".join(part for part in token_stream(tokens) if isinstance(part, bytes))
    server = serve(Reply(body=[wire[i : i + 1] for i in range(len(wire))]))
    assert path.stream(make_llm(server)) == tokens


def test_crlf_and_keepalive_comments(serve: Any) -> None:
    wire = b"".join(part for part in token_stream(TOKENS) if isinstance(part, bytes))
    wire = wire.replace(b"\n", b"\r\n").replace(b"data:", b": keep-alive\r\n\r\ndata:")
    server = serve(Reply(body=[wire]))
    assert make_llm(server).invoke("x") == "".join(TOKENS)


# --- threads -------------------------------------------------------------------------------


def test_concurrent_streams_from_threads_share_one_instance(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    results: list[str] = []

    def work() -> None:
        results.append(llm.invoke("x"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["".join(TOKENS)] * 8


# --- cancellation (async) ------------------------------------------------------------------


def test_cancelling_the_task_closes_the_connection(serve: Any) -> None:
    server = serve(paused_after_two_tokens())
    got: list[str] = []

    async def consume() -> None:
        async for token in make_llm(server).astream("x"):
            got.append(token)  # noqa: PERF401 -- the list is read while streaming

    async def main() -> float | None:
        task = asyncio.create_task(consume())
        while len(got) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server pauses 10 s; it sees the hang-up long before that.
        return await asyncio.to_thread(server.wait_disconnect, timeout=2.0)

    assert asyncio.run(asyncio.wait_for(main(), 8)) is not None
    assert got == ["a", "b"]


def test_break_and_aclose_close_the_connection(serve: Any) -> None:
    server = serve(paused_after_two_tokens())
    llm = make_llm(server)

    async def leave_by_break() -> float | None:
        async for token in llm.astream("x"):
            assert token == "a"
            break
        return await asyncio.to_thread(server.wait_disconnect, timeout=2.0)

    async def leave_by_aclose() -> float | None:
        tokens = llm.astream("x")
        assert await anext(tokens) == "a"
        await tokens.aclose()
        return await asyncio.to_thread(server.wait_disconnect, timeout=2.0)

    assert asyncio.run(leave_by_break()) is not None
    assert asyncio.run(leave_by_aclose()) is not None
    assert len(server.seen) == 2


# --- scale, loops, threads, processes ------------------------------------------------------


async def _serve_tokens(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny keep-alive asyncio server: every request gets the TOKENS stream, 10 ms apart."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for part in token_stream(TOKENS):
                assert isinstance(part, bytes)
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    finally:
        writer.close()


def test_500_concurrent_streams_on_one_loop_use_few_threads() -> None:
    async def main() -> tuple[list[str], int, float]:
        server = await asyncio.start_server(_serve_tokens, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        llm = TogetherLLM(model="m", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1")
        most_threads = threading.active_count()

        async def one() -> str:
            nonlocal most_threads
            parts = []
            async for token in llm.astream("x"):
                parts.append(token)
                most_threads = max(most_threads, threading.active_count())
            return "".join(parts)

        started = time.monotonic()
        texts = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(500))), 20)
        elapsed = time.monotonic() - started
        await llm.aclose()
        server.close()
        await server.wait_closed()
        return texts, most_threads, elapsed

    texts, most_threads, elapsed = asyncio.run(main())
    assert texts == ["".join(TOKENS)] * 500
    assert most_threads < 16
    assert elapsed < 20


def test_one_instance_from_two_loops_in_two_threads(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        async def main() -> list[str]:
            return await llm.abatch(["x"] * 4)

        try:
            results.append(asyncio.run(main()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert results == [["".join(TOKENS)] * 4] * 2


def _use_inherited(llm: Any, results: Any) -> None:
    # Runs in a forked child: the instance (and its pools) came over by fork, not by pickle.
    sync_text = llm.invoke("x")
    async_text = asyncio.run(llm.ainvoke("x"))
    results.put((sync_text, async_text))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
def test_an_instance_inherited_by_fork_makes_fresh_pools(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    # The parent holds live pooled connections of both kinds before forking.
    assert llm.invoke("x") == asyncio.run(llm.ainvoke("x")) == "".join(TOKENS)
    opened = server.connections
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_use_inherited, args=(llm, results))
    child.start()
    try:
        assert results.get(timeout=30) == ("".join(TOKENS), "".join(TOKENS))
    finally:
        child.join(timeout=30)
    assert child.exitcode == 0
    # The child never wrote to the parent's sockets: it opened its own connections.
    assert server.connections >= opened + 2
    assert llm.invoke("x") == "".join(TOKENS)  # and the parent's pool still works
