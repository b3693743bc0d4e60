"""The native async path over real loopback sockets: parity with sync, cancellation, scale."""

import asyncio
import concurrent.futures
import multiprocessing
import pickle
import threading
import time
from typing import Any

import pytest
from langchain_core.prompts import PromptTemplate

from langchain_together_stream import (
    TogetherLLM,
)
from tests.conftest import make_llm
from tests.llm_helpers import AsyncRecorder, Recorder, paused_after_two_tokens
from tests.scripted_server import Reply, token_stream

TOKENS = ["Alan", " Turing", " was", " a", " mathematician", "."]
KEY = "sk-test-SECRET-0123456789"


# --- parity with the sync path -----------------------------------------------------------


def test_results_and_metadata_match_the_sync_path(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    sync_chunks = list(llm._stream("x"))
    sync_result = llm.generate(["x", "y"])

    async def main() -> tuple[Any, ...]:
        chunks = [chunk async for chunk in llm._astream("x")]
        tokens = [token async for token in llm.astream("x")]
        text = await llm.ainvoke("x")
        result = await llm.agenerate(["x", "y"])
        batch = await llm.abatch(["x"] * 6, config={"max_concurrency": 3})
        return chunks, tokens, text, result, batch

    chunks, tokens, text, result, batch = asyncio.run(main())
    assert chunks == sync_chunks
    assert tokens == TOKENS
    assert text == "".join(TOKENS) == llm.invoke("x")
    assert result.generations == sync_result.generations
    assert result.llm_output == sync_result.llm_output
    assert batch == llm.batch(["x"] * 6, config={"max_concurrency": 3})
    assert server.seen[-1].json["stream"] is True


def test_same_headers_as_sync(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    llm.invoke("x")
    asyncio.run(llm.ainvoke("x"))
    sync_seen, async_seen = server.seen
    for name in ("accept", "user-agent", "authorization", "content-type", "accept-encoding"):
        assert async_seen.headers[name] == sync_seen.headers[name], name
    assert async_seen.headers["authorization"] == f"Bearer {KEY}"
    assert async_seen.json == sync_seen.json


@pytest.mark.parametrize("handler", [Recorder, AsyncRecorder])
def test_callbacks_fire_before_each_yield(serve: Any, handler: type) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    recorder = handler()

    async def main() -> None:
        seen = 0
        async for token in make_llm(server).astream("x", config={"callbacks": [recorder]}):
            seen += 1
            tokens = [event[1] for event in recorder.events if event[0] == "token"]
            assert tokens[-1] == token
            assert len([t for t in tokens if t]) == seen

    asyncio.run(main())
    assert [e[1] for e in recorder.events if e[0] == "token" and e[1]] == TOKENS


def test_astream_events_shows_each_token(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    chain = PromptTemplate.from_template("{q}") | make_llm(server)

    async def main() -> list[str]:
        return [
            event["data"]["chunk"].text
            async for event in chain.astream_events({"q": "x"}, version="v2")
            if event["event"] == "on_llm_stream"
        ]

    assert [token for token in asyncio.run(main()) if token] == TOKENS


# --- cancellation ----------------------------------------------------------------------------


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


# --- scale, loops, threads, processes -------------------------------------------------------


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


def _stream_in_worker(payload: bytes) -> str:
    llm = pickle.loads(payload)

    async def main() -> str:
        return "".join([token async for token in llm.astream("x")])

    return asyncio.run(main())


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pickled_instance_streams_in_a_worker_process(serve: Any, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    assert asyncio.run(llm.ainvoke("x")) == "".join(TOKENS)  # the parent has used its pool
    payload = pickle.dumps(llm)
    context = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_stream_in_worker, payload).result(timeout=60) == "".join(TOKENS)


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
