"""What TogetherLLM sends: headers, payload, parameter names, endpoints."""

import asyncio
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherConfigurationError,
    __version__,
)
from tests.conftest import make_llm
from tests.hostile import KEY, TOKENS
from tests.scripted_server import Reply, sse_body, token_stream


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
