"""`ChatTogether` over real sockets: the request, callbacks, tools, structured output,
reasoning, usage, failures and early exits; sync and async from one test body."""

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_together_stream import (
    ChatTogether,
    TogetherBadRequestError,
    TogetherConfigurationError,
    TogetherError,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
)
from langchain_together_stream._params import ChatParams
from langchain_together_stream.emulator import ChatReply, TogetherEmulator
from tests.chat_chunks import (
    PATH_IDS,
    PATHS,
    USAGE,
    Sync,
    chat_chunk,
    chat_text_stream,
    make_chat,
)
from tests.scripted_server import Reply, sse_body

both = pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)


@pytest.fixture(scope="module")
def emulator() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as emu:
        yield emu


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city, e.g. Paris")


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


class JokeDict(TypedDict):
    """A joke."""

    setup: str
    punchline: str


# --- the request ------------------------------------------------------------------------------


def test_the_request_is_a_stream_with_usage_and_nothing_unset(serve: Any) -> None:
    server = serve(Reply(body=chat_text_stream(["Hi"])))
    make_chat(server.base_url).invoke([SystemMessage("Be brief."), HumanMessage("Hello")])
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test-SECRET-0123456789"
    assert seen.headers["accept"] == "text/event-stream"
    assert seen.json == {
        "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_every_parameter_is_sent_under_togethers_name_when_set(serve: Any) -> None:
    values: dict[str, Any] = {
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.2,
        "frequency_penalty": 0.3,
        "min_p": 0.05,
        "logit_bias": {"42": -1.0},
        "seed": 7,
        "logprobs": 1,
        "safety_model": "Meta-Llama/Llama-Guard-7b",
        "reasoning_effort": "low",
        "reasoning": {"enabled": True},
    }
    assert set(values) == set(ChatParams.sent_params())
    server = serve(Reply(body=chat_text_stream(["Hi"])))
    chat = make_chat(server.base_url, stop=["END"], model_kwargs={"chat_template_kwargs": {}})
    for name, value in values.items():
        setattr(chat, name, value)
    chat.invoke("x")
    sent = server.seen[0].json
    for name, value in values.items():
        assert sent[name] == value, name
    assert sent["stop"] == ["END"]
    assert sent["chat_template_kwargs"] == {}


def test_call_arguments_override_fields_and_stop_is_a_list(serve: Any) -> None:
    server = serve(Reply(body=chat_text_stream(["Hi"])))
    chat = make_chat(server.base_url, temperature=0.1, stop=["A"])
    chat.invoke("x", stop=["B", "C"], temperature=0.9, model="other/model")
    sent = server.seen[0].json
    assert (sent["stop"], sent["temperature"], sent["model"]) == (["B", "C"], 0.9, "other/model")
    chat.invoke("x", stream_options={"continuous_usage_stats": False})
    assert server.seen[1].json["stream_options"] == {
        "continuous_usage_stats": False,
        "include_usage": True,
    }


def test_n_above_one_is_refused_before_sending(serve: Any) -> None:
    server = serve(Reply(body=chat_text_stream(["Hi"])))
    with pytest.raises(TogetherConfigurationError, match="n=2"):
        make_chat(server.base_url).invoke("x", n=2)
    assert server.seen == []


def test_a_conversation_with_tool_calls_goes_out_in_openai_format(serve: Any) -> None:
    server = serve(Reply(body=chat_text_stream(["18 C."])))
    history = [
        HumanMessage("Weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("18 C", tool_call_id="c1"),
    ]
    make_chat(server.base_url).invoke(history)
    assert server.seen[0].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C", "tool_call_id": "c1"},
    ]


def test_tracing_params_name_together(serve: Any) -> None:
    chat = make_chat("http://127.0.0.1:9/v1", temperature=0.2, max_tokens=5, stop=["x"])
    params = chat._get_ls_params()
    assert params["ls_provider"] == "together"
    assert params["ls_model_name"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert params["ls_model_type"] == "chat"
    assert (params["ls_temperature"], params["ls_max_tokens"], params["ls_stop"]) == (
        0.2,
        5,
        ["x"],
    )


# --- streaming and callbacks -------------------------------------------------------------------


class Recorder(BaseCallbackHandler):
    """Records each token callback, in order, with what the consumer had seen by then."""

    run_inline = True

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen
        self.events: list[tuple[str, int, type]] = []

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        self.events.append((token, len(self.seen), type(chunk)))


@both
def test_the_token_callback_fires_before_each_chunk_is_yielded(serve: Any, path: Sync) -> None:
    server = serve(Reply(body=chat_text_stream(["Hel", "lo", "!"])))
    seen: list[str] = []
    recorder = Recorder(seen)
    chat = make_chat(server.base_url)

    async def consume_async() -> None:
        async for chunk in chat.astream("x", config={"callbacks": [recorder]}):
            seen.append(chunk.text)  # noqa: PERF401 -- read while streaming

    if path.name == "sync":
        for chunk in chat.stream("x", config={"callbacks": [recorder]}):
            seen.append(chunk.text)  # noqa: PERF401 -- read while streaming
    else:
        asyncio.run(consume_async())
    assert seen == ["Hel", "lo", "!", ""]
    # Each callback came before its chunk reached the consumer, with a ChatGenerationChunk.
    assert recorder.events == [
        ("Hel", 0, ChatGenerationChunk),
        ("lo", 1, ChatGenerationChunk),
        ("!", 2, ChatGenerationChunk),
        ("", 3, ChatGenerationChunk),
    ]


@both
def test_invoke_streams_too_and_fires_a_callback_per_token(serve: Any, path: Sync) -> None:
    server = serve(Reply(body=chat_text_stream(["a", "b", "c"])))
    recorder = Recorder([])
    message = path.invoke(make_chat(server.base_url), "x", config={"callbacks": [recorder]})
    assert message.content == "abc"
    assert [token for token, _, _ in recorder.events] == ["a", "b", "c", ""]
    assert message.usage_metadata["input_token_details"] == {"cache_read": 2}


@both
def test_disable_streaming_yields_the_whole_message_once(serve: Any, path: Sync) -> None:
    server = serve(Reply(body=chat_text_stream(["a", "b"])))
    chunks = path.stream(make_chat(server.base_url, disable_streaming=True), "x")
    assert len(chunks) == 1
    assert chunks[0].content == "ab"
    assert chunks[0].response_metadata["finish_reason"] == "stop"


class CountingLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.calls += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.calls += 1
        return True


@both
def test_the_rate_limiter_is_asked_before_each_call(serve: Any, path: Sync) -> None:
    server = serve(Reply(body=chat_text_stream(["a"])))
    limiter = CountingLimiter()
    chat = make_chat(server.base_url, rate_limiter=limiter)
    path.invoke(chat, "x")
    path.stream(chat, "x")
    assert limiter.calls == 2


# --- tools ------------------------------------------------------------------------------------


def get_time(zone: str) -> str:
    """Get the time in a time zone.

    Args:
        zone: The zone, e.g. UTC.
    """
    return "12:00"


class Population(TypedDict):
    """Get the population of a city."""

    city: str


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


OPENAI_DICT = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}


TOOL_CASES = {
    "pydantic": (GetWeather, "GetWeather", 'Weather in "Paris"?', {"city": "Paris"}),
    "typeddict": (Population, "Population", 'How many live in "Oslo"?', {"city": "Oslo"}),
    "function": (get_time, "get_time", 'Time in "UTC"?', {"zone": "UTC"}),
    "basetool": (add, "add", "Add 2 and 3", {"a": 2, "b": 3}),
    "dict": (OPENAI_DICT, "lookup", 'Look up "ferry"', {"word": "ferry"}),
}


@both
@pytest.mark.parametrize("kind", list(TOOL_CASES))
def test_every_kind_of_tool_is_called_with_parsed_arguments(
    emulator: TogetherEmulator, path: Sync, kind: str
) -> None:
    tool_like, name, prompt, args = TOOL_CASES[kind]
    chat = make_chat(emulator.base_url).bind_tools([tool_like])
    message = path.invoke(chat, prompt)
    assert [(call["name"], call["args"]) for call in message.tool_calls] == [(name, args)]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    sent = emulator.requests[-1].json
    assert sent["tools"][0]["function"]["name"] == name


@both
def test_streamed_tool_calls_arrive_as_chunks_keyed_by_index(
    emulator: TogetherEmulator, path: Sync
) -> None:
    chat = make_chat(emulator.base_url).bind_tools([GetWeather, get_time])
    chunks = path.stream(chat, 'Use GetWeather for "Paris" and get_time for "UTC".')
    fragments = [c for chunk in chunks for c in chunk.tool_call_chunks]
    assert {fragment["index"] for fragment in fragments} == {0, 1}
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert [(call["name"], call["args"]) for call in total.tool_calls] == [
        ("GetWeather", {"city": "Paris"}),
        ("get_time", {"zone": "UTC"}),
    ]
    assert total.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("tools", "choice", "sent"),
    [
        ([GetWeather], "any", {"type": "function", "function": {"name": "GetWeather"}}),
        ([GetWeather], "required", {"type": "function", "function": {"name": "GetWeather"}}),
        ([GetWeather], True, {"type": "function", "function": {"name": "GetWeather"}}),
        ([GetWeather, get_time], "any", "auto"),
        (
            [GetWeather, get_time],
            "get_time",
            {"type": "function", "function": {"name": "get_time"}},
        ),
        ([GetWeather], "auto", "auto"),
        ([GetWeather], "none", "none"),
        ([GetWeather], None, None),
        ([GetWeather], False, None),
    ],
)
def test_tool_choice_is_sent_in_a_form_together_accepts(
    emulator: TogetherEmulator, tools: list[Any], choice: Any, sent: Any
) -> None:
    # The emulator refuses "required" with a 400, as Together was reported to.
    make_chat(emulator.base_url).bind_tools(tools, tool_choice=choice).invoke('In "Paris"?')
    assert emulator.requests[-1].json.get("tool_choice") == sent


def test_a_tool_choice_naming_no_bound_tool_is_refused() -> None:
    chat = make_chat("http://127.0.0.1:9/v1")
    with pytest.raises(TogetherConfigurationError, match="names no bound tool"):
        chat.bind_tools([GetWeather], tool_choice="get_time")


@both
def test_an_agent_turn_with_a_tool_result_gets_an_answer(
    emulator: TogetherEmulator, path: Sync
) -> None:
    chat = make_chat(emulator.base_url).bind_tools([GetWeather])
    first = path.invoke(chat, 'Weather in "Paris"?')
    history = [
        HumanMessage('Weather in "Paris"?'),
        first,
        ToolMessage("sunny, 21 C", tool_call_id=first.tool_calls[0]["id"]),
    ]
    answer = path.invoke(chat, history)
    assert answer.tool_calls == []
    assert "sunny, 21 C" in answer.content


# --- structured output -------------------------------------------------------------------------


@both
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_from_pydantic_typeddict_and_json_schema(
    emulator: TogetherEmulator, path: Sync, method: str
) -> None:
    prompt = 'Tell a joke: setup "Why?" punchline "Because."'
    joke = path.invoke(
        make_chat(emulator.base_url).with_structured_output(Joke, method=method), prompt
    )
    assert isinstance(joke, Joke)
    for schema in (JokeDict, Joke.model_json_schema()):
        data = path.invoke(
            make_chat(emulator.base_url).with_structured_output(schema, method=method), prompt
        )
        assert set(data) == {"setup", "punchline"}


def test_json_schema_is_the_default_and_sent_in_openai_format(emulator: TogetherEmulator) -> None:
    make_chat(emulator.base_url).with_structured_output(Joke).invoke("joke")
    response_format = emulator.requests[-1].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Joke"
    assert response_format["json_schema"]["schema"]["required"] == ["setup", "punchline"]
    assert "tools" not in emulator.requests[-1].json


def test_function_calling_forces_the_one_tool(emulator: TogetherEmulator) -> None:
    make_chat(emulator.base_url).with_structured_output(Joke, method="function_calling").invoke(
        "joke"
    )
    sent = emulator.requests[-1].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
    assert sent["parallel_tool_calls"] is False


@both
def test_json_mode_parses_json(emulator: TogetherEmulator, path: Sync) -> None:
    chat = make_chat(emulator.base_url).with_structured_output(method="json_mode")
    data = path.invoke(chat, 'Answer in JSON with keys "name" and "city".')
    assert isinstance(data, dict)
    assert emulator.requests[-1].json["response_format"] == {"type": "json_object"}


@both
def test_include_raw_keeps_the_message_and_the_parsing_error(path: Sync) -> None:
    def not_json(messages: Any, request: Any) -> ChatReply:
        return ChatReply(content="no JSON here")

    with TogetherEmulator(chat_responder=not_json) as emu:
        chat = make_chat(emu.base_url).with_structured_output(Joke, include_raw=True)
        result = path.invoke(chat, "joke")
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].content == "no JSON here"
    assert result["parsed"] is None
    assert result["parsing_error"] is not None


def test_structured_output_refuses_what_it_cannot_do() -> None:
    chat = make_chat("http://127.0.0.1:9/v1")
    with pytest.raises(TogetherConfigurationError, match="Unknown method"):
        chat.with_structured_output(Joke, method="xml")  # type: ignore[arg-type]
    with pytest.raises(TogetherConfigurationError, match="needs a schema"):
        chat.with_structured_output(None)
    with pytest.raises(TogetherConfigurationError, match="Unsupported arguments"):
        chat.with_structured_output(Joke, tools=[])


# --- reasoning and usage -----------------------------------------------------------------------


@both
def test_reasoning_is_kept_apart_from_the_answer(emulator: TogetherEmulator, path: Sync) -> None:
    chat = make_chat(emulator.base_url, reasoning={"enabled": True})
    message = path.invoke(chat, "What is 17 * 23?")
    reasoning = message.additional_kwargs["reasoning_content"]
    assert reasoning
    assert reasoning not in message.content
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": reasoning}
    assert emulator.requests[-1].json["reasoning"] == {"enabled": True}
    chunks = path.stream(chat, "What is 17 * 23?")
    streamed = "".join(c.additional_kwargs.get("reasoning_content", "") for c in chunks)
    assert streamed == reasoning
    assert "".join(c.text for c in chunks) == message.content


@both
def test_reasoning_effort_is_sent(emulator: TogetherEmulator, path: Sync) -> None:
    message = path.invoke(make_chat(emulator.base_url, reasoning_effort="high"), "Think.")
    assert emulator.requests[-1].json["reasoning_effort"] == "high"
    assert message.additional_kwargs["reasoning_content"]


@both
def test_usage_is_on_exactly_one_chunk(emulator: TogetherEmulator, path: Sync) -> None:
    chunks = path.stream(make_chat(emulator.base_url), "Hello")
    with_usage = [chunk for chunk in chunks if chunk.usage_metadata]
    assert len(with_usage) == 1
    usage = with_usage[0].usage_metadata
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_token_details"] == {"cache_read": 0}


@both
def test_batch_answers_every_conversation(emulator: TogetherEmulator, path: Sync) -> None:
    answers = path.batch(make_chat(emulator.base_url), ["one", "two", "three"])
    assert [type(answer) for answer in answers] == [AIMessage] * 3
    assert all(answer.content and answer.usage_metadata for answer in answers)


# --- failures ------------------------------------------------------------------------------------


@both
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http-400", TogetherBadRequestError),
        ("credit-limit", TogetherRateLimitError),
        ("http-500", TogetherServerError),
        ("not-sse", TogetherStreamError),
    ],
)
def test_status_errors_are_typed(
    emulator: TogetherEmulator, path: Sync, fault: str, error: type
) -> None:
    chat = make_chat(emulator.base_url, model=f"emulator/fault-{fault}", max_retries=0)
    with pytest.raises(error):
        path.invoke(chat, "x")


@both
@pytest.mark.parametrize("fault", ["error-mid-stream", "event-error", "truncate", "malformed-json"])
def test_a_broken_stream_keeps_the_text_streamed_before_it(
    emulator: TogetherEmulator, path: Sync, fault: str
) -> None:
    chat = make_chat(emulator.base_url, model=f"emulator/fault-{fault}")
    with pytest.raises(TogetherStreamError) as info:
        path.invoke(chat, "x")
    assert info.value.partial_text
    assert len(info.value.partial_text.split()) >= 2


@both
def test_a_retried_rate_limit_then_succeeds(emulator: TogetherEmulator, path: Sync) -> None:
    chat = make_chat(emulator.base_url, model="emulator/fault-rate-limit-then-ok")
    assert path.invoke(chat, "retry me").content


def paused_after_two_chunks() -> Reply:
    return Reply(
        body=[
            *sse_body(chat_chunk("a"), chat_chunk("b"), done=False),
            10.0,
            *sse_body(chat_chunk("", "stop", usage=USAGE)),
        ]
    )


@both
def test_leaving_the_stream_closes_the_connection(serve: Any, path: Sync) -> None:
    server = serve(paused_after_two_chunks())
    chunks = path.first_chunks(make_chat(server.base_url), "x", 2)
    assert [chunk.content for chunk in chunks] == ["a", "b"]
    # The server pauses 10 s; it sees the hang-up long before that.
    assert server.wait_disconnect(timeout=2.0) is not None


def test_break_closes_the_connection_without_waiting_for_gc(serve: Any) -> None:
    server = serve(paused_after_two_chunks())
    for chunk in make_chat(server.base_url).stream("x"):
        assert chunk.content == "a"
        break
    assert server.wait_disconnect(timeout=2.0) is not None


def test_cancelling_the_task_closes_the_connection(serve: Any) -> None:
    server = serve(paused_after_two_chunks())
    got: list[str] = []

    async def consume() -> None:
        async for chunk in make_chat(server.base_url).astream("x"):
            got.append(chunk.text)  # noqa: PERF401 -- read while streaming

    async def main() -> float | None:
        task = asyncio.create_task(consume())
        while len(got) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await asyncio.to_thread(server.wait_disconnect, timeout=2.0)

    assert asyncio.run(asyncio.wait_for(main(), 8)) is not None
    assert got == ["a", "b"]


@both
def test_the_deadline_cuts_a_slow_stream_and_keeps_its_text(serve: Any, path: Sync) -> None:
    trickle: list[bytes | float] = []
    for index in range(100):
        trickle += [*sse_body(chat_chunk(f" t{index}"), done=False), 0.1]
    server = serve(Reply(body=trickle))
    chat = make_chat(server.base_url, deadline=1.5)  # room for the first tokens on a loaded machine
    with pytest.raises(TogetherTimeoutError, match=r"deadline of 1\.5 s") as info:
        path.invoke(chat, "x")
    assert info.value.partial_text.startswith(" t0 t1")
    assert server.wait_disconnect(timeout=2.0) is not None


def test_every_failure_is_a_together_error_and_reported_once(serve: Any) -> None:
    errors: list[BaseException] = []

    class Errors(BaseCallbackHandler):
        def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
            errors.append(error)

    server = serve(Reply(body=sse_body(chat_chunk("a"), '{"choices": [', done=False)))
    with pytest.raises(TogetherError):
        make_chat(server.base_url).invoke("x", config={"callbacks": [Errors()]})
    assert len(errors) == 1


def test_one_instance_serves_threads_at_once(emulator: TogetherEmulator) -> None:
    chat = make_chat(emulator.base_url)
    results: list[str] = []

    def ask(prompt: str) -> None:
        results.append(chat.invoke(prompt).text)

    threads = [threading.Thread(target=ask, args=(f"q{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert all(results)


def test_the_key_never_leaves_in_dumps_or_repr() -> None:
    from langchain_core.load import dumps

    chat = make_chat("http://127.0.0.1:9/v1")
    assert "SECRET" not in repr(chat)
    assert "SECRET" not in dumps(chat)
    assert json.loads(dumps(chat))["kwargs"]["api_key"]["id"] == ["TOGETHER_API_KEY"]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"api_key": ""}, "No Together API key"),
        ({"api_key": "sk-line\nbreak"}, "line break"),
        ({"base_url": "http://together.example/v1"}, "clear text"),
        ({"base_url": "https://user:pw@together.example/v1"}, "user name or password"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"temperature": float("nan")}, "NaN"),
    ],
)
def test_the_shared_client_checks_apply_before_anything_is_sent(
    settings: dict[str, Any], match: str
) -> None:
    base_url = settings.pop("base_url", "http://127.0.0.1:9/v1")
    with pytest.raises(TogetherConfigurationError, match=match):
        make_chat(base_url, **settings)


def test_key_and_base_url_come_from_the_environment(
    emulator: TogetherEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "sk-from-env")
    monkeypatch.setenv("TOGETHER_BASE_URL", emulator.base_url)
    chat = ChatTogether(model="meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert chat.invoke("Hello").content
    assert emulator.requests[-1].headers["authorization"] == "[REDACTED]"


def test_a_free_text_schema_title_becomes_a_valid_name(emulator: TogetherEmulator) -> None:
    schema = {
        "title": "Joke of the day!",
        "type": "object",
        "properties": {"setup": {"type": "string"}},
        "required": ["setup"],
    }
    result = make_chat(emulator.base_url).with_structured_output(schema).invoke("joke")
    assert set(result) == {"setup"}
    assert emulator.requests[-1].json["response_format"]["json_schema"]["name"] == "Joke_of_the_day"


def test_the_readmes_chat_snippets_run_as_shown(
    emulator: TogetherEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import io
    import re
    import textwrap
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    chat_section = readme.split("\n## Chat model\n", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(
        textwrap.dedent(block)
        for block in re.findall(r"```python\n(.*?)^```", chat_section, re.DOTALL | re.MULTILINE)
    )
    monkeypatch.setenv("TOGETHER_API_KEY", "sk-readme")
    monkeypatch.setenv("TOGETHER_BASE_URL", emulator.base_url)
    names: dict[str, Any] = {"__name__": "readme"}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "README.md", "exec"), names)
    assert out.getvalue()
    assert names["message"].usage_metadata["input_token_details"] == {"cache_read": 0}
    assert names["message"].response_metadata["model_provider"] == "together"
    assert [call["name"] for call in names["reply"].tool_calls] == ["GetWeather"]


def test_a_pickled_model_still_works(emulator: TogetherEmulator) -> None:
    import pickle

    chat = make_chat(emulator.base_url)
    chat.invoke("warm the pool")
    copy = pickle.loads(pickle.dumps(chat))
    assert copy.invoke("Hello").content
    assert asyncio.run(copy.ainvoke("Hello")).content


def test_astream_events_shows_each_token(serve: Any) -> None:
    server = serve(Reply(body=chat_text_stream(["a", "b", "c"])))
    chat = make_chat(server.base_url)

    async def tokens() -> list[str]:
        return [
            event["data"]["chunk"].text
            async for event in chat.astream_events("x", version="v2")
            if event["event"] == "on_chat_model_stream"
        ]

    assert asyncio.run(tokens()) == ["a", "b", "c", ""]
