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


# Values of every JSON type, so each field of the schema meets shapes it accepts and refuses.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
choice_shapes = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.just(value)
        for name, value in [
            ("index", 0),
            ("text", "t"),
            ("delta", {"content": "d"}),
            ("finish_reason", "stop"),
            ("seed", 12),
            ("logprobs", -0.5),
        ]
    },
)
chunk_shapes = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.just("id-1"),
        "model": json_values | st.just("m"),
        "choices": json_values | st.lists(choice_shapes, max_size=2),
        "token": json_values
        | st.fixed_dictionaries({}, optional={"text": json_values, "logprob": json_values}),
        "finish_reason": json_values,
        "seed": json_values,
        "usage": json_values,
        "error": json_values,
        "object": json_values,
    },
)


@given(chunk_shapes)
def test_msgspec_decodes_what_pydantic_validates_or_leaves_it_to_pydantic(document: dict) -> None:
    # msgspec is only a faster route to the same dicts: whatever it accepts, pydantic must
    # accept with the same result (what it refuses goes to pydantic, see `_wire._decode`).
    import msgspec
    from pydantic import ValidationError

    from langchain_together_stream._wire.completions import _CHUNK

    data = json.dumps(document)
    try:
        fast = _CHUNK.fast.decode(data)
    except msgspec.MsgspecError:
        return
    try:
        slow = _CHUNK.checked.validate_json(data)
    except ValidationError as exc:
        pytest.fail(f"msgspec accepted what pydantic refuses: {data} ({exc})")
    assert typed(fast) == typed(slow)  # the same values of the same types (1 is not 1.0)


def typed(value: object) -> object:
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)
