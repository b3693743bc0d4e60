"""The emulator's ``/v1/chat/completions``, over real sockets with the standard library."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_together_stream.emulator import (
    FAULTS,
    ChatReply,
    ChatToolCall,
    TogetherEmulator,
    _chat,
    _chat_wire,
)
from langchain_together_stream.emulator._schema import Hints, value_for
from tests.conftest import shared_path

KEY = "sk-emulator-test-key-0123456789"
TIMEOUT = 5.0
PATH = "/v1/chat/completions"
INT64_MAX = 2**63 - 1

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _math_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }


ADD, MULTIPLY = _math_tool("add"), _math_tool("multiply")


@pytest.fixture(scope="module")
def emu() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as server:
        yield server


# ---------------------------------------------------------------------- helpers


def post(
    emu: TogetherEmulator, body: Any, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=TIMEOUT)
    try:
        all_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
        all_headers.update(headers or {})
        conn.request("POST", PATH, json.dumps(body).encode(), all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat(
    emu: TogetherEmulator,
    content: str = "Tell me about rivers.",
    *,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> tuple[int, dict[str, str], bytes]:
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    return post(emu, body, headers)


def stream_chunks(
    emu: TogetherEmulator, content: str = "Hi", **fields: Any
) -> list[dict[str, Any]]:
    code, headers, body = chat(emu, content, stream=True, **fields)
    assert code == 200, body
    assert headers["content-type"] == "text/event-stream;charset=utf-8"
    assert body.endswith(b"data: [DONE]\n\n")
    return parse_sse(body)


def parse_sse(body: bytes) -> list[dict[str, Any]]:
    lines = [ln[6:] for ln in body.decode("utf-8").split("\n") if ln.startswith("data: ")]
    return [json.loads(ln) for ln in lines if ln != "[DONE]"]


def key_shape(obj: Any) -> Any:
    """Keys in order, recursively: what must match the recordings, values aside."""
    if isinstance(obj, dict):
        return [(k, key_shape(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [key_shape(v) for v in obj]
    return None


def recording(name: str) -> list[dict[str, Any]]:
    path = next(shared_path("together").glob(f"{name}-*.sse"))
    return parse_sse(Path(path).read_bytes())


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def tool_calls_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum tool-call deltas by index, as a client does."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(part["index"], {"id": None, "name": "", "arguments": ""})
            call["id"] = part.get("id") or call["id"]
            call["name"] += part.get("function", {}).get("name", "")
            call["arguments"] += part.get("function", {}).get("arguments", "")
    return [calls[i] for i in sorted(calls)]


def validates(value: Any, schema: Any, root: Mapping[str, Any]) -> bool:
    """A small JSON-schema checker for the subset the emulator builds values for."""
    if not isinstance(schema, Mapping):
        return True
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return validates(value, target, root)
    if "const" in schema:
        return bool(value == schema["const"])
    if "enum" in schema:
        return value in schema["enum"]
    if "anyOf" in schema:
        return any(validates(value, s, root) for s in schema["anyOf"])
    checks = {
        "object": lambda: (
            isinstance(value, dict)
            and all(k in value for k in schema.get("required", []))
            and all(validates(value[k], s, root) for k, s in schema.get("properties", {}).items())
        ),
        "array": lambda: (
            isinstance(value, list)
            and schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9)
            and all(validates(v, schema.get("items", {}), root) for v in value)
        ),
        "integer": lambda: (
            isinstance(value, int)
            and not isinstance(value, bool)
            and schema.get("minimum", -(10**18)) <= value <= schema.get("maximum", 10**18)
        ),
        "number": lambda: (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and schema.get("minimum", -(10**18)) <= value <= schema.get("maximum", 10**18)
        ),
        "string": lambda: (
            isinstance(value, str)
            and schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
        ),
        "boolean": lambda: isinstance(value, bool),
        "null": lambda: value is None,
    }
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else list(checks)
    return any(checks[k]() for k in kinds)


# ---------------------------------------------------------------------- text streams


def test_text_stream_has_the_recorded_shape(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(emu, "Say hello", max_tokens=3, stop=["\n\n\n"])
    real = recording("09")
    # Natural ends: an empty eos chunk carries finish_reason "stop", seed and usage.
    natural = stream_chunks(emu, "Say hello", headers={"X-Emulator-Tokens": "2"})
    assert len(natural) == 3
    assert [key_shape(c) for c in natural] == [key_shape(c) for c in real]
    last = natural[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["choices"][0]["delta"] == {"token_id": 128009, "role": "assistant", "content": ""}
    assert last["choices"][0]["seed"] > INT64_MAX
    assert last["usage"]["completion_tokens"] == 3
    assert last["usage"]["cached_tokens"] == 0
    assert all(c["usage"] is None for c in natural[:-1])
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks + natural)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    # A length stop keeps its last token on the finish chunk.
    assert len(chunks) == 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"][0]["delta"]["content"]
    for chunk in chunks:
        choice = chunk["choices"][0]
        assert choice["text"] == choice["delta"]["content"]


def test_model_is_echoed_and_text_is_deterministic(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(emu, "Rivers?", model="meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert {c["model"] for c in chunks} == {"meta-llama/Llama-3.3-70B-Instruct-Turbo"}
    text = content_of(chunks)
    assert text
    assert text == text.lstrip()
    assert content_of(stream_chunks(emu, "Rivers?")) == text
    assert content_of(stream_chunks(emu, "Rivers?", seed=7)) != text
    code, _, body = chat(emu, "Rivers?")
    assert code == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == text


def test_non_stream_body(emu: TogetherEmulator) -> None:
    code, headers, body = chat(emu, "Hi", max_tokens=4, seed=42)
    assert code == 200
    assert headers["content-type"].startswith("application/json")
    obj = json.loads(body)
    assert obj["object"] == "chat.completion"
    assert obj["model"] == "m"
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["seed"] == 42
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["tool_calls"] == []
    usage = obj["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + 4
    assert usage["cached_tokens"] == 0


def test_stop_sequence_and_stream_false(emu: TogetherEmulator) -> None:
    full = content_of(stream_chunks(emu, "Stop test"))
    word = full.split()[3]
    chunks = stream_chunks(emu, "Stop test", stop=[word])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert content_of(chunks) == full[: full.index(word)]


def test_multimodal_content_parts_are_read(emu: TogetherEmulator) -> None:
    content = [
        {"type": "text", "text": 'Weather in "Oslo"?'},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    body = {"model": "m", "messages": [{"role": "user", "content": content}], "tools": [WEATHER]}
    code, _, raw = post(emu, body)
    assert code == 200
    call = json.loads(raw)["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}


# ---------------------------------------------------------------------- tool calls


def test_tool_call_stream_has_the_recorded_shape(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(
        emu,
        'What is the weather in "Paris"?',
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    real = recording("10")
    assert [key_shape(c) for c in chunks] == [key_shape(c) for c in real]
    assert chunks[0]["choices"][0]["role"] == "assistant"
    assert content_of(chunks) == ""
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [
        None,
        None,
        "tool_calls",
        "tool_calls",
    ]
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == (
        '{"city":"Paris"}'
    )
    (call,) = tool_calls_of(chunks)
    assert call["name"] == "get_weather"
    assert call["id"].startswith("call_")
    assert len(call["id"]) == len("call_") + 24
    assert chunks[-1]["choices"][0]["seed"] > INT64_MAX
    assert chunks[-1]["usage"]["cached_tokens"] == 0
    assert all("usage" not in c for c in chunks[:-1])


def test_arguments_come_from_the_prompt(emu: TogetherEmulator) -> None:
    (call,) = tool_calls_of(stream_chunks(emu, "multiply 3 and 4", tools=[MULTIPLY]))
    assert call["name"] == "multiply"
    assert json.loads(call["arguments"]) == {"a": 3, "b": 4}


def test_tools_named_in_the_prompt_are_called_in_parallel(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(emu, "First multiply 3 and 4, then add 1 and 2", tools=[ADD, MULTIPLY])
    calls = tool_calls_of(chunks)
    assert [c["name"] for c in calls] == ["multiply", "add"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"a": 3, "b": 4}, {"a": 1, "b": 2}]
    assert len({c["id"] for c in calls}) == 2
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes.count("tool_calls") == 2
    assert finishes[-2:] == ["tool_calls", "tool_calls"]


def test_first_tool_when_none_is_named(emu: TogetherEmulator) -> None:
    (call,) = tool_calls_of(stream_chunks(emu, "Do something", tools=[WEATHER, ADD]))
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"])["city"]


def test_unicode_arguments_are_kept(emu: TogetherEmulator) -> None:
    prompt = "Create a customer named '你好啊集团' (Hello Group) - a Chinese technology company"
    tool = {
        "type": "function",
        "function": {
            "name": "unicode_customer",
            "parameters": {
                "type": "object",
                "properties": {
                    "customer_name": {"type": "string"},
                    "description": {"type": "string"},
                },
                "required": ["customer_name", "description"],
            },
        },
    }
    code, _, body = chat(emu, prompt, stream=True, tools=[tool])
    assert code == 200
    assert "你好啊集团".encode() in body
    (call,) = tool_calls_of(parse_sse(body))
    args = json.loads(call["arguments"])
    assert args["customer_name"] == "你好啊集团"
    assert args["description"]


def test_after_a_tool_result_the_answer_quotes_it(emu: TogetherEmulator) -> None:
    messages = [
        {"role": "user", "content": "multiply 3 and 4"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "multiply", "arguments": '{"a":3,"b":4}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12"},
    ]
    code, _, body = post(
        emu, {"model": "m", "messages": messages, "tools": [MULTIPLY], "stream": True}
    )
    assert code == 200
    chunks = parse_sse(body)
    assert tool_calls_of(chunks) == []
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = content_of(chunks)
    assert "multiply" in text
    assert "12" in text


def test_tool_choice_none_answers_in_text(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(emu, "multiply 3 and 4", tools=[MULTIPLY], tool_choice="none")
    assert tool_calls_of(chunks) == []
    assert content_of(chunks)


def test_tool_choice_required_is_rejected_like_together(emu: TogetherEmulator) -> None:
    code, headers, body = chat(emu, "multiply 3 and 4", tools=[MULTIPLY], tool_choice="required")
    assert code == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "tool_choice"
    assert error["message"]


def test_tool_choice_required_can_be_accepted() -> None:
    with TogetherEmulator(reject_required_tool_choice=False) as server:
        chunks = stream_chunks(server, "multiply 3 and 4", tools=[MULTIPLY], tool_choice="required")
    assert [c["name"] for c in tool_calls_of(chunks)] == ["multiply"]


def test_non_stream_tool_call(emu: TogetherEmulator) -> None:
    code, _, body = chat(emu, "add 5 and 6", tools=[ADD])
    assert code == 200
    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "add", "arguments": '{"a":5,"b":6}'}
    assert call["type"] == "function"


@pytest.mark.parametrize(
    ("tool_choice", "param"),
    [
        ({"type": "function", "function": {"name": "nope"}}, "tool_choice"),
        ("sometimes", "tool_choice"),
    ],
)
def test_bad_tool_choice_is_400(emu: TogetherEmulator, tool_choice: Any, param: str) -> None:
    code, _, body = chat(emu, tools=[ADD], tool_choice=tool_choice)
    assert code == 400
    assert json.loads(body)["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{}]}, "tools"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1},
            "max_tokens",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ],
)
def test_invalid_requests_are_400(emu: TogetherEmulator, body: dict[str, Any], param: str) -> None:
    code, _, raw = post(emu, body)
    assert code == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


# ---------------------------------------------------------------------- structured output

JOKE_SCHEMA: dict[str, Any] = {
    "title": "Joke",
    "type": "object",
    "properties": {
        "setup": {"type": "string", "description": "question to set up a joke"},
        "punchline": {"type": "string"},
        "rating": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 10}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
        "kind": {"enum": ["pun", "story"]},
        "author": {"$ref": "#/$defs/Author"},
    },
    "required": ["setup", "punchline", "tags", "kind", "author"],
    "$defs": {
        "Tag": {"type": "string", "maxLength": 5},
        "Author": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
            "required": ["name", "age"],
        },
    },
}


def test_json_schema_answer_is_valid(emu: TogetherEmulator) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": JOKE_SCHEMA, "strict": True},
    }
    chunks = stream_chunks(emu, "Tell me a joke about cats", response_format=response_format)
    value = json.loads(content_of(chunks))
    assert validates(value, JOKE_SCHEMA, JOKE_SCHEMA)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_json_object_answer(emu: TogetherEmulator) -> None:
    prompt = "Tell me a joke. Return JSON with 'setup' and 'punchline' keys."
    code, _, body = chat(emu, prompt, response_format={"type": "json_object"})
    assert code == 200
    value = json.loads(json.loads(body)["choices"][0]["message"]["content"])
    assert set(value) == {"setup", "punchline"}
    value = json.loads(
        content_of(stream_chunks(emu, "Hi", response_format={"type": "json_object"}))
    )
    assert isinstance(value, dict)
    assert value
    # Together's older form puts the schema next to the type.
    fmt = {"type": "json_object", "schema": JOKE_SCHEMA}
    assert validates(
        json.loads(content_of(stream_chunks(emu, "Joke", response_format=fmt))),
        JOKE_SCHEMA,
        JOKE_SCHEMA,
    )


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.one_of(
        st.builds(
            lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
            st.integers(-50, 50),
            st.integers(0, 20),
        ),
        st.just({"type": "integer"}),
        st.just({"type": "number"}),
        st.builds(
            lambda lo, span: {"type": "number", "minimum": lo, "maximum": lo + span},
            st.integers(-5, 5),
            st.integers(0, 3),
        ),
        st.builds(
            lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span},
            st.integers(0, 5),
            st.integers(0, 5),
        ),
        st.just({"type": "string"}),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=3).map(
            lambda e: {"enum": e}
        ),
        st.integers().map(lambda c: {"const": c}),
    )

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        props = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), children, max_size=4)
        obj = props.flatmap(
            lambda p: (
                st.lists(st.sampled_from(sorted(p)), unique=True).map(
                    lambda req: {"type": "object", "properties": p, "required": req}
                )
                if p
                else st.just({"type": "object", "properties": {}})
            )
        )
        arr = st.builds(
            lambda items, lo, span: {
                "type": "array",
                "items": items,
                "minItems": lo,
                "maxItems": lo + span,
            },
            children,
            st.integers(0, 3),
            st.integers(0, 2),
        )
        any_of = st.lists(children, min_size=1, max_size=3).map(lambda bs: {"anyOf": bs})
        nullable = children.map(
            lambda c: {**c, "type": [c["type"], "null"]} if isinstance(c.get("type"), str) else c
        )
        return st.one_of(obj, arr, any_of, nullable)

    return st.recursive(scalar, extend, max_leaves=12)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_schemas(), prompt=st.text(max_size=40))
def test_values_built_from_any_schema_validate(schema: dict[str, Any], prompt: str) -> None:
    value = value_for(schema, Hints(prompt))
    json.dumps(value)
    assert validates(value, schema, schema), (schema, value)


def test_hints_skip_apostrophes_and_take_numbers_in_order() -> None:
    hints = Hints("What's 2.5 times 'x' and 7? \u201cquoted\u201d")
    assert hints.next_int() == 7
    assert hints.next_number() == 2.5
    assert hints.next_string() == "x"
    assert hints.next_string() == "quoted"
    assert hints.next_string() is None


# ---------------------------------------------------------------------- reasoning


@pytest.mark.parametrize(
    "fields",
    [
        {"reasoning": {"enabled": True}},
        {"reasoning_effort": "low"},
        {"model": "deepseek-ai/DeepSeek-R1"},
        {"model": "Qwen/QwQ-32B"},
    ],
)
def test_reasoning_streams_before_content(emu: TogetherEmulator, fields: dict[str, Any]) -> None:
    chunks = stream_chunks(emu, "Why is the sky blue?", **fields)
    kinds = ["reasoning" if "reasoning" in c["choices"][0]["delta"] else "content" for c in chunks]
    first_content = kinds.index("content")
    assert first_content > 0
    assert "reasoning" not in kinds[first_content:]
    for chunk in chunks[:first_content]:
        delta = chunk["choices"][0]["delta"]
        assert delta["role"] == "assistant"
        assert delta["content"] == ""
        assert delta["reasoning"]
    assert content_of(chunks)
    last = chunks[-1]
    assert last["usage"]["completion_tokens"] == len(chunks)


def test_no_reasoning_unless_asked(emu: TogetherEmulator) -> None:
    for fields in ({}, {"reasoning": {"enabled": False}, "model": "deepseek-ai/DeepSeek-R1"}):
        chunks = stream_chunks(emu, "Why is the sky blue?", **fields)
        assert not any("reasoning" in c["choices"][0]["delta"] for c in chunks)


def test_non_stream_reasoning(emu: TogetherEmulator) -> None:
    code, _, body = chat(emu, "Why?", reasoning={"enabled": True})
    assert code == 200
    message = json.loads(body)["choices"][0]["message"]
    assert message["reasoning"]
    assert message["content"]


# ---------------------------------------------------------------------- usage, logprobs


def test_usage_only_when_asked_on_request(emu: TogetherEmulator) -> None:
    headers = {"X-Emulator-Usage": "when-asked"}
    code, _, body = chat(emu, stream=True, headers=headers)
    assert code == 200
    assert parse_sse(body)[-1]["usage"] is None
    code, _, body = chat(emu, stream=True, headers=headers, stream_options={"include_usage": True})
    chunks = parse_sse(body)
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    # Tool-call streams leave the key out altogether.
    _, _, body = chat(emu, "add 1 and 2", stream=True, tools=[ADD], headers=headers)
    assert all("usage" not in c for c in parse_sse(body))


def test_usage_in_a_separate_chunk_like_openai(emu: TogetherEmulator) -> None:
    headers = {"X-Emulator-Usage": "separate-chunk"}
    chunks = parse_sse(chat(emu, stream=True, headers=headers)[2])
    assert all(c["usage"] is None for c in chunks)
    for tools in ([], [ADD]):
        body = chat(
            emu,
            "add 1 and 2",
            stream=True,
            tools=tools,
            headers=headers,
            stream_options={"include_usage": True},
        )[2]
        chunks = parse_sse(body)
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["total_tokens"] > 0
        assert chunks[-2]["choices"][0]["finish_reason"] in {"stop", "tool_calls"}
        assert not any(c.get("usage") for c in chunks[:-1])
    code, _, body = chat(emu, stream=True, headers={"X-Emulator-Usage": "sometimes"})
    assert code == 400
    assert json.loads(body)["error"]["param"] == "X-Emulator-Usage"


def test_cached_tokens_header(emu: TogetherEmulator) -> None:
    chunks = parse_sse(chat(emu, stream=True, headers={"X-Emulator-Cached-Tokens": "5"})[2])
    assert chunks[-1]["usage"]["cached_tokens"] == 5


def test_logprobs_are_bare_numbers_per_chunk(emu: TogetherEmulator) -> None:
    chunks = stream_chunks(emu, "Hi", logprobs=True, max_tokens=5)
    values = [c["choices"][0]["logprobs"] for c in chunks]
    assert all(isinstance(v, float) and v <= 0 for v in values)
    code, _, body = chat(emu, "Hi", logprobs=True, max_tokens=5)
    assert code == 200
    logprobs = json.loads(body)["choices"][0]["logprobs"]
    assert (
        len(logprobs["tokens"])
        == len(logprobs["token_logprobs"])
        == len(logprobs["token_ids"])
        == 5
    )
    assert all(c["choices"][0]["logprobs"] is None for c in stream_chunks(emu, "Hi", max_tokens=2))
    code, _, body = chat(emu, "Hi", logprobs=True, top_logprobs=1, max_tokens=2)
    top = json.loads(body)["choices"][0]["logprobs"]["top_logprobs"]
    assert [list(t) for t in top] == [[tok] for tok in logprobs["tokens"][:2]]


# ---------------------------------------------------------------------- responder


def test_chat_responder_scripts_text_tools_and_reasoning() -> None:
    seen: list[tuple[list[dict[str, Any]], Mapping[str, Any]]] = []

    def responder(messages: list[dict[str, Any]], req: Mapping[str, Any]) -> ChatReply | str | None:
        seen.append((messages, req))
        last = messages[-1]["content"]
        if last == "plain":
            return "Scripted answer."
        if last == "tools":
            return ChatReply(
                content="Calling.",
                reasoning="I should call two tools.",
                tool_calls=[
                    ChatToolCall("lookup", {"q": "ünïcode"}, id="call_fixed"),
                    ChatToolCall("broken", "{not json"),
                ],
            )
        return None

    with TogetherEmulator(chat_responder=responder) as server:
        assert content_of(stream_chunks(server, "plain")) == "Scripted answer."
        chunks = stream_chunks(server, "tools")
        default = stream_chunks(server, "other")
    assert seen[0][0] == [{"role": "user", "content": "plain"}]
    assert seen[0][1]["model"] == "m"
    assert chunks[0]["choices"][0]["role"] == "assistant"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning", "") for c in chunks)
    assert reasoning == "I should call two tools."
    assert content_of(chunks) == "Calling."
    calls = tool_calls_of(chunks)
    assert calls[0] == {"id": "call_fixed", "name": "lookup", "arguments": '{"q":"ünïcode"}'}
    assert calls[1]["name"] == "broken"
    assert calls[1]["arguments"] == "{not json"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert content_of(default)


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_http_faults_on_chat(emu: TogetherEmulator, status: int) -> None:
    code, headers, body = chat(emu, stream=True, headers={"X-Emulator-Fault": f"http-{status}"})
    assert code == status
    assert "error" in json.loads(body)
    if status == 429:
        assert headers["retry-after"] == "1"
    code, _, _ = chat(emu, stream=True, model=f"emulator/fault-http-{status}")
    assert code == status


def test_mid_stream_faults_on_chat(emu: TogetherEmulator) -> None:
    _, _, body = chat(emu, stream=True, headers={"X-Emulator-Fault": "error-mid-stream;after=2"})
    blocks = [b for b in body.decode().split("\n\n") if b]
    assert len(blocks) == 3
    assert json.loads(blocks[-1][6:])["error"]["type"] == "server_error"
    _, _, body = chat(emu, stream=True, headers={"X-Emulator-Fault": "truncate;after=1"})
    assert b"[DONE]" not in body
    assert len(parse_sse(body)) == 1
    _, _, body = chat(emu, stream=True, max_tokens=3, headers={"X-Emulator-Fault": "crlf"})
    assert body.endswith(b"data: [DONE]\r\n\r\n")
    _, headers, body = chat(emu, stream=True, headers={"X-Emulator-Fault": "not-sse"})
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["object"] == "chat.completion"


def test_fault_in_a_tool_call_stream(emu: TogetherEmulator) -> None:
    _, _, body = chat(
        emu,
        "add 1 and 2",
        stream=True,
        tools=[ADD],
        headers={"X-Emulator-Fault": "truncate;after=2"},
    )
    chunks = parse_sse(body)
    assert len(chunks) == 2
    assert tool_calls_of(chunks)[0]["arguments"] == ""


def test_then_ok_and_redirect_on_chat(emu: TogetherEmulator) -> None:
    headers = {"X-Emulator-Fault": "rate-limit-then-ok;count=1"}
    assert chat(emu, "then ok", stream=True, headers=headers)[0] == 429
    assert chat(emu, "then ok", stream=True, headers=headers)[0] == 200
    code, headers_out, _ = chat(emu, stream=True, headers={"X-Emulator-Fault": "redirect"})
    assert code == 307
    assert headers_out["location"] == f"{emu.root_url}/redirected/v1/chat/completions"


def test_byte_at_a_time_and_stall_on_chat(emu: TogetherEmulator) -> None:
    _, _, body = chat(
        emu, stream=True, max_tokens=3, headers={"X-Emulator-Fault": "byte-at-a-time"}
    )
    assert len(parse_sse(body)) == 3
    assert body.endswith(b"data: [DONE]\n\n")
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=TIMEOUT)
    payload = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    ).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"X-Emulator-Fault: stall-headers\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    with sock:
        sock.sendall(head.encode() + payload)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_pacing_applies_to_chat(emu: TogetherEmulator) -> None:
    start = time.monotonic()
    chunks = stream_chunks(emu, "Hi", max_tokens=3, headers={"X-Emulator-TTFT": "0.2"})
    assert time.monotonic() - start >= 0.2
    assert len(chunks) == 3


# Short parameters so every fault ends quickly; the rest are the faults' defaults.
_SWEEP_PARAMS = {
    "stall": ";seconds=0.05",
    "stall-headers": ";seconds=0.05",
    "long-line": ";bytes=5000",
    "rate-limit-then-ok": ";seconds=0",
    "server-error-then-ok": ";seconds=0",
}


@pytest.mark.parametrize("name", sorted(FAULTS))
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-call"])
def test_every_fault_applies_to_chat(emu: TogetherEmulator, name: str, tools: bool) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": f"sweep {name} {tools} add 1 and 2"}],
        "stream": True,
        "max_tokens": 8,
    }
    if tools:
        body["tools"] = [ADD]
    payload = json.dumps(body).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"X-Emulator-Fault: {name}{_SWEEP_PARAMS.get(name, '')}\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    raw = b""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=TIMEOUT) as sock:
        sock.sendall(head.encode() + payload)
        try:
            while data := sock.recv(65536):
                raw += data
        except ConnectionResetError:
            assert name == "reset"
    record = emu.requests[-1]
    assert record.fault == name
    assert emu.wait_for_requests(len(emu.requests))
    if name == "reset":
        return
    status = int(raw.split(b" ", 2)[1])
    expected = FAULTS_STATUS.get(name, 200)
    assert status == expected, raw[:300]
    assert b"Internal emulator error" not in raw


FAULTS_STATUS = {
    **{n: int(n.split("-")[1]) for n in FAULTS if n.startswith("http-") and n != "http-error"},
    "http-error": 500,
    "credit-limit": 429,
    "rate-limit-then-ok": 429,
    "server-error-then-ok": 503,
    "redirect": 307,
}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["type", "properties", "required", "items", "anyOf", "enum", "$ref", "x"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parameters=_JSON,
    response_format=_JSON,
    tool_choice=_JSON,
    content=_JSON,
    reasoning=_JSON,
)
def test_any_request_shape_is_answered_or_refused(
    parameters: Any, response_format: Any, tool_choice: Any, content: Any, reasoning: Any
) -> None:
    # Whatever a client sends, the answer is a plan or a 400, never an emulator crash.
    req = {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
        "tool_choice": tool_choice,
        "response_format": response_format,
        "reasoning": reasoning,
    }
    for with_tools in (True, False):
        body = req if with_tools else {k: v for k, v in req.items() if k != "tools"}
        try:
            planned = _chat.plan(body, responder=None, natural_tokens=4, reject_required=True)
        except _chat.ChatRequestError:
            continue
        ctx = _chat_wire.ChunkContext("id", 0, "m", 2**63, logprobs=True)
        for event in _chat_wire.chat_events(planned, ctx):
            json.loads(event)
        json.dumps(_chat_wire.chat_body(planned, ctx))


def test_a_broken_responder_gives_a_500_envelope(caplog: pytest.LogCaptureFixture) -> None:
    def responder(messages: list[dict[str, Any]], req: Mapping[str, Any]) -> Any:
        return {"content": "a dict is not a reply"}

    with TogetherEmulator(chat_responder=responder) as server:
        code, _, body = chat(server, stream=True)
    assert code == 500
    assert json.loads(body)["error"]["type"] == "server_error"
    assert "chat_responder must return ChatReply" in caplog.text
