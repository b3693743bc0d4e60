"""TogetherLLM streaming and results over real loopback sockets: tokens, text, metadata,
usage and logprobs, the same on the sync and the async path."""

import asyncio
from typing import Any

from tests.conftest import make_llm
from tests.hostile import TOKENS
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream


def test_stream_yields_each_token(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    assert list(make_llm(server).stream("Who was Turing?")) == TOKENS


def test_invoke_returns_the_text(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    assert make_llm(server).invoke("Who?") == "".join(TOKENS)


def test_generate_reports_metadata_and_usage(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS, finish_reason="eos")))
    result = make_llm(server).generate(["one", "two"])
    info = result.generations[0][0].generation_info
    assert info == {
        "finish_reason": "eos",
        "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9},
        "model": "test/model",
        "id": "test-id-1",
    }
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 6, "completion_tokens": 12, "total_tokens": 18},
        "model_name": "test/model",
    }


def test_metadata_rides_on_the_final_chunk_only(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    chunks = list(make_llm(server)._stream("x"))
    assert [chunk.text for chunk in chunks] == TOKENS
    assert all(chunk.generation_info is None for chunk in chunks[:-1])
    assert chunks[-1].generation_info is not None
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.generation_info is not None
    assert total.generation_info["model"] == "test/model"  # not concatenated


def test_final_chunk_with_empty_text_still_carries_metadata(serve: Any) -> None:
    body = sse_body(
        completion_chunk("2"),
        completion_chunk(
            "", "eos", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        ),
    )
    server = serve(Reply(body=body))
    chunks = list(make_llm(server)._stream("x"))
    assert [chunk.text for chunk in chunks] == ["2", ""]
    assert chunks[-1].generation_info is not None
    assert chunks[-1].generation_info["finish_reason"] == "eos"


def test_empty_completion_still_yields_one_chunk(serve: Any) -> None:
    server = serve(Reply(body=sse_body(completion_chunk("", "length"))))
    assert make_llm(server).invoke("x") == ""


def test_finish_reason_repeated_on_two_chunks_keeps_all_text(serve: Any) -> None:
    body = sse_body(
        completion_chunk("a"),
        completion_chunk("b", "tool_calls"),
        completion_chunk("c", "tool_calls"),
    )
    server = serve(Reply(body=body))
    result = make_llm(server).generate(["x"])
    assert result.generations[0][0].text == "abc"
    assert result.generations[0][0].generation_info["finish_reason"] == "tool_calls"  # type: ignore[index]


def test_logprobs_are_lists_that_merge(serve: Any) -> None:
    chunks = [completion_chunk(t) for t in ("a", "b")]
    for value, chunk in zip((-0.5, -1.5), chunks):
        chunk["choices"][0]["logprobs"] = value
    last = completion_chunk("c", "length")
    last["choices"][0]["logprobs"] = -2.5
    server = serve(Reply(body=sse_body(*chunks, last)))
    result = make_llm(server, logprobs=1).generate(["x"])
    assert result.generations[0][0].generation_info["logprobs"] == {  # type: ignore[index]
        "tokens": ["a", "b", "c"],
        "token_logprobs": [-0.5, -1.5, -2.5],
    }


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
