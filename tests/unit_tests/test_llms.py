"""TogetherLLM end to end over real loopback sockets."""

import gc
import json
import logging
import threading
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.load import dumpd, dumps, load
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from langchain_together_stream import (
    TogetherAuthenticationError,
    TogetherConfigurationError,
    TogetherLLM,
    __version__,
)
from tests.conftest import make_llm
from tests.hostile import Path
from tests.llm_helpers import Recorder, paused_after_two_tokens
from tests.scripted_server import (
    Reply,
    completion_chunk,
    sse_body,
    token_stream,
)

TOKENS = ["Alan", " Turing", " was", " a", " mathematician", "."]
KEY = "sk-test-SECRET-0123456789"


# --- streaming and results -------------------------------------------------------------


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


# --- the request -------------------------------------------------------------------------


def test_request_headers_and_minimal_payload(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    make_llm(server).invoke("Hello")
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v1/completions")
    assert seen.headers["accept"] == "text/event-stream"
    assert seen.headers["user-agent"] == f"langchain-together-stream/{__version__}"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.json == {"model": "test/model", "prompt": "Hello", "stream": True}


def test_every_parameter_is_sent_under_togethers_name_when_set(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    params = {
        "max_tokens": 5,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "min_p": 0.05,
        "logit_bias": {"42": -1.0},
        "seed": 7,
        "logprobs": 2,
        "echo": False,
        "safety_model": "Meta-Llama/Llama-Guard-7b",
    }
    llm = make_llm(server, stop=["\n\n"], model_kwargs={"brand_new": 1}, **params)
    llm.invoke("Hi")
    assert server.seen[0].json == {
        "model": "test/model",
        "prompt": "Hi",
        "stream": True,
        "stop": ["\n\n"],
        "brand_new": 1,
        **params,
    }


def test_call_stop_and_kwargs_override_fields(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, stop=["a"], temperature=0.1)
    llm.invoke("Hi", stop=["END"], temperature=0.9)
    body = server.seen[0].json
    assert (body["stop"], body["temperature"]) == (["END"], 0.9)


def test_legacy_inference_endpoint_uses_stream_tokens(serve: Any) -> None:
    legacy = [
        {
            "choices": [{"text": t}],
            "result_type": "language-model-inference",
            "id": "e235a7",
            "token": {"id": i, "text": t, "logprob": 0, "special": False},
        }
        for i, t in enumerate(TOKENS)
    ]
    server = serve(Reply(body=sse_body(*legacy)))
    llm = make_llm(server, base_url=server.base_url.removesuffix("/v1"), endpoint="inference")
    result = llm.generate(["Hi"])
    assert result.generations[0][0].text == "".join(TOKENS)
    assert server.seen[0].path == "/inference"
    assert server.seen[0].json["stream_tokens"] is True
    assert "stream" not in server.seen[0].json


def test_n_above_one_is_refused_before_sending(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    with pytest.raises(TogetherConfigurationError, match="n=2"):
        make_llm(server, model_kwargs={"n": 2}).invoke("x")
    assert server.seen == []


# --- callbacks and LangChain integration --------------------------------------------------


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


# --- secrets and configuration ------------------------------------------------------------


def test_key_never_appears_in_repr_str_dumps_or_logs(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(
        Reply(
            status=401,
            headers=[("Content-Type", "application/json")],
            body=[b'{"error": {"message": "Invalid API key", "type": "invalid_api_key"}}'],
            framing="length",
        )
    )
    llm = make_llm(server)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TogetherAuthenticationError) as info:
        llm.invoke("x")
    texts = [
        repr(llm),
        str(llm),
        dumps(llm),
        json.dumps(dumpd(llm)),
        str(info.value),
        repr(info.value),
        caplog.text,
        repr(llm._identifying_params),
    ]
    for text in texts:
        assert KEY not in text
    assert dumpd(llm)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["TOGETHER_API_KEY"],
    }


def test_dumpd_and_load_round_trip(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, temperature=0.4)
    monkeypatch.setenv("TOGETHER_API_KEY", KEY)
    restored = load(
        dumpd(llm),
        valid_namespaces=["langchain_together_stream"],
        allowed_objects=[TogetherLLM],
        secrets_from_env=True,
    )
    assert isinstance(restored, TogetherLLM)
    assert restored.temperature == 0.4
    assert restored.invoke("x") == "".join(TOKENS)


def test_key_and_base_url_from_the_environment(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    monkeypatch.setenv("TOGETHER_API_KEY", "env-key")
    monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
    assert TogetherLLM(model="m").invoke("x") == "".join(TOKENS)
    assert server.seen[0].headers["authorization"] == "Bearer env-key"


def test_default_base_url_is_together() -> None:
    assert TogetherLLM(model="m", api_key="k").base_url == "https://api.together.xyz/v1"


def test_missing_key_says_how_to_get_one() -> None:
    with pytest.raises(TogetherConfigurationError, match="TOGETHER_API_KEY"):
        TogetherLLM(model="m")


@pytest.mark.parametrize("url", ["http://api.example.com/v1", "http://10.0.0.8/v1"])
def test_clear_text_key_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(TogetherConfigurationError, match="clear text"):
        TogetherLLM(model="m", api_key="k", base_url=url)
    assert TogetherLLM(model="m", api_key="k", base_url=url, allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/v1", "http://localhost:8/v1", "http://[::1]:8/v1"]
)
def test_loopback_http_is_allowed(url: str) -> None:
    assert TogetherLLM(model="m", api_key="k", base_url=url).base_url == url


def test_unknown_settings_fail_loudly() -> None:
    with pytest.raises(ValueError, match="temprature"):
        TogetherLLM(model="m", api_key="k", temprature=0.5)  # type: ignore[call-arg]


# --- connections ----------------------------------------------------------------------------


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


# --- threads ------------------------------------------------------------------------------


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
