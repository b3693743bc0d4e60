import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_together_stream._wire import parse_chunk, parse_error_body
from langchain_together_stream.errors import TogetherStreamError
from tests.scripted_server import completion_chunk


def test_text_from_choice_text_then_delta_content_then_token_text() -> None:
    assert parse_chunk("message", json.dumps(completion_chunk("a"))).text == "a"
    delta_only = {"choices": [{"index": 0, "delta": {"content": "b"}}]}
    assert parse_chunk("message", json.dumps(delta_only)).text == "b"
    legacy = {"choices": [{}], "token": {"id": 5, "text": "c", "logprob": -0.5}}
    chunk = parse_chunk("message", json.dumps(legacy))
    assert (chunk.text, chunk.logprob) == ("c", -0.5)


def test_finish_reason_and_seed_in_choice_or_top_level() -> None:
    in_choice = completion_chunk("", "eos")
    in_choice["choices"][0]["seed"] = 15924764223251450000
    chunk = parse_chunk("message", json.dumps(in_choice))
    assert (chunk.finish_reason, chunk.seed) == ("eos", 15924764223251450000)
    top = {"choices": [{"index": 0, "text": "x"}], "finish_reason": "length", "seed": 1.5e19}
    chunk = parse_chunk("message", json.dumps(top))
    assert (chunk.finish_reason, chunk.seed) == ("length", 1.5e19)


def test_usage_with_extra_fields_is_kept() -> None:
    data = completion_chunk(
        "x",
        "stop",
        usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cached_tokens": 0},
    )
    usage = parse_chunk("message", json.dumps(data)).usage
    assert usage == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "cached_tokens": 0,
    }


@pytest.mark.parametrize(
    ("event", "data", "match"),
    [
        ("message", '{"error": {"message": "overloaded", "type": "server_error"}}', "overloaded"),
        ("message", '{"error": "plain words"}', "plain words"),
        ("error", '{"message": "nope"}', "error"),
        ("error", "not json at all", "not json at all"),
        ("message", '{"choices": [', "not a valid completion chunk"),
        ("message", "[1, 2]", "not a valid completion chunk"),
        ("message", json.dumps(completion_chunk("x", "error")), "finish_reason 'error'"),
    ],
)
def test_error_events_and_garbage_raise_stream_errors(event: str, data: str, match: str) -> None:
    with pytest.raises(TogetherStreamError, match=match):
        parse_chunk(event, data)


def test_error_object_keeps_type_and_request_id() -> None:
    data = '{"id": "req-9", "error": {"message": "boom", "type": "server_error"}}'
    with pytest.raises(TogetherStreamError) as info:
        parse_chunk("message", data)
    assert (info.value.error_type, info.value.request_id) == ("server_error", "req-9")


def test_several_choices_are_refused_never_interleaved() -> None:
    two = {"choices": [{"index": 0, "text": "a"}, {"index": 1, "text": "b"}]}
    with pytest.raises(TogetherStreamError, match="n=1"):
        parse_chunk("message", json.dumps(two))
    second = {"choices": [{"index": 1, "text": "b"}]}
    with pytest.raises(TogetherStreamError, match="n=1"):
        parse_chunk("message", json.dumps(second))


def test_error_body_envelope() -> None:
    body = b'{"id":"9026f2085b337034","error":{"message":"Invalid request","type":"invalid_request_error","param":"model","code":null}}'
    info = parse_error_body(body, fallback="400")
    assert (info.message, info.type, info.code, info.request_id) == (
        "Invalid request",
        "invalid_request_error",
        None,
        "9026f2085b337034",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "503 Service Unavailable"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "503 Service Unavailable"),
        (b"Rate limit reached for model", "Rate limit reached for model"),
        (b'{"message": "flat"}', "flat"),
        (b'{"error": "just a string"}', "just a string"),
        (b"\xff\xfe garbage", "\ufffd\ufffd garbage"),
    ],
)
def test_error_body_other_shapes(body: bytes, message: str) -> None:
    assert parse_error_body(body, fallback="503 Service Unavailable").message == message


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_a_stream_error(data: str) -> None:
    with contextlib.suppress(TogetherStreamError):
        parse_chunk("message", data)


@given(st.binary(max_size=200))
def test_any_error_body_gives_a_message(body: bytes) -> None:
    assert isinstance(parse_error_body(body, fallback="x").message, str)
