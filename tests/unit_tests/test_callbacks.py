"""LangChain integration: per-token callbacks (sync and async handlers), chains,
astream_events, the cache, tracing parameters."""

import asyncio
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from tests.conftest import make_llm
from tests.hostile import TOKENS
from tests.llm_helpers import AsyncRecorder, Recorder
from tests.scripted_server import Reply, token_stream


def test_callback_fires_for_each_token_before_it_is_yielded(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    recorder = Recorder()
    order: list[str] = []
    for token in make_llm(server).stream("x", config={"callbacks": [recorder]}):
        seen_tokens = [e[1] for e in recorder.events if e[0] == "token"]
        assert seen_tokens[-1] == token  # the callback already ran
        order.append(token)
    assert order == TOKENS
    kinds = recorder.kinds()
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    tokens = [e for e in recorder.events if e[0] == "token"]
    # The last token rides with the metadata: no empty extra chunk.
    assert [e[1] for e in tokens] == TOKENS
    assert all(e[2] is not None and e[2].text == e[1] for e in tokens)


def test_invoke_and_batch_also_fire_per_token_callbacks(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    recorder = Recorder()
    llm = make_llm(server)
    llm.invoke("x", config={"callbacks": [recorder]})
    llm.batch(["a", "b"], config={"callbacks": [recorder]})
    assert len([e for e in recorder.events if e[0] == "token"]) == 3 * len(TOKENS)


def test_chain_streams_and_astream_events_shows_each_token(serve: Any) -> None:
    import asyncio

    server = serve(Reply(body=token_stream(TOKENS)))
    chain = (
        PromptTemplate.from_template("Tell me about {topic}") | make_llm(server) | StrOutputParser()
    )
    assert chain.invoke({"topic": "Turing"}) == "".join(TOKENS)
    assert "".join(chain.stream({"topic": "Turing"})) == "".join(TOKENS)

    async def collect() -> list[str]:
        return [
            event["data"]["chunk"].text
            async for event in chain.astream_events({"topic": "Turing"}, version="v2")
            if event["event"] == "on_llm_stream"
        ]

    streamed = asyncio.run(collect())
    assert [token for token in streamed if token] == TOKENS
    assert server.seen[0].json["prompt"] == "Tell me about Turing"


def test_cache_keys_separate_models_and_parameters(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    set_llm_cache(InMemoryCache())
    try:
        make_llm(server, temperature=0.1).invoke("same prompt")
        make_llm(server, temperature=0.1).invoke("same prompt")
        assert len(server.seen) == 1  # served from the cache
        make_llm(server, temperature=0.9).invoke("same prompt")
        make_llm(server, model="other/model", temperature=0.1).invoke("same prompt")
        make_llm(server, temperature=0.1, top_k=3).invoke("same prompt")
        assert len(server.seen) == 4
    finally:
        set_llm_cache(None)


def test_identifying_and_tracing_params(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, temperature=0.3, max_tokens=9)
    assert llm._llm_type == "together-stream"
    ident = dict(llm._identifying_params)
    assert ident["model"] == "test/model"
    assert (ident["temperature"], ident["max_tokens"]) == (0.3, 9)
    assert "api_key" not in ident
    assert llm._get_ls_params(stop=["x"]) == {
        "ls_provider": "together",
        "ls_model_name": "test/model",
        "ls_model_type": "llm",
        "ls_temperature": 0.3,
        "ls_max_tokens": 9,
        "ls_stop": ["x"],
    }


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
