"""Chat chunks: parsing Together's JSON and assembling LangChain `AIMessageChunk`s."""

import json
from functools import reduce
from operator import add
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import AIMessageChunk

from langchain_together_stream._chat_chunks import ChatAssembler, usage_metadata
from langchain_together_stream._wire.chat import ChatDelta, ToolCallDelta, parse_chat_chunk
from langchain_together_stream.errors import TogetherStreamError
from tests.chat_chunks import USAGE, chat_chunk, tool_args, tool_start
from tests.conftest import shared_path


def assemble(datas: list[dict[str, Any]], *, logprobs: bool = False) -> list[AIMessageChunk]:
    """The chunks a stream of these events becomes, ending with [DONE]."""
    assembler = ChatAssembler(model="requested/model", with_logprobs=logprobs)
    chunks = [assembler.add(parse_chat_chunk("message", json.dumps(data))) for data in datas]
    chunks.append(assembler.finish(saw_done=True))
    return [chunk.message for chunk in chunks if chunk is not None]  # type: ignore[misc]


def summed(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(add, chunks)


def chat_recordings() -> list[str]:
    folder = shared_path("together")
    return sorted(path.name for path in folder.glob("*-v1-chat-*.sse") if path.name >= "03")


def recorded_datas(name: str) -> list[dict[str, Any]]:
    lines = shared_path("together", name).read_text().splitlines()
    datas = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    return [json.loads(data) for data in datas if data != "[DONE]"]


def expected_message(datas: list[dict[str, Any]]) -> dict[str, Any]:
    """What the summed message must hold, read from the recording's JSON directly."""
    content, calls, finish, usage = [], {}, None, None
    for data in datas:
        choice = data["choices"][0]
        delta = choice.get("delta") or {}
        content.append(delta.get("content") or "")
        for call in delta.get("tool_calls") or []:
            known = calls.setdefault(call["index"], {"id": None, "name": None, "args": ""})
            known["id"] = known["id"] or call.get("id")
            known["name"] = known["name"] or call.get("function", {}).get("name")
            known["args"] += call.get("function", {}).get("arguments") or ""
        finish = choice.get("finish_reason") or finish
        usage = data.get("usage") or usage
    return {
        "content": "".join(content),
        "tool_calls": [
            {"name": c["name"], "args": json.loads(c["args"]), "id": c["id"], "type": "tool_call"}
            for _, c in sorted(calls.items())
        ],
        "finish_reason": finish,
        "usage": usage,
        "id": datas[-1]["id"],
        "model": datas[-1]["model"],
        "seed": datas[-1]["choices"][0]["seed"],
    }


def test_every_chat_recording_is_here() -> None:
    assert len(chat_recordings()) == 10  # 03-12


@pytest.mark.parametrize("name", [f"{n:02d}" for n in range(3, 13)])
def test_each_recording_adds_up_to_the_exact_message(name: str) -> None:
    (recording,) = [r for r in chat_recordings() if r.startswith(name)]
    datas = recorded_datas(recording)
    expected = expected_message(datas)
    chunks = assemble(datas)
    message = summed(chunks)
    assert message.content == expected["content"]
    assert message.tool_calls == expected["tool_calls"]
    assert message.invalid_tool_calls == []
    usage = expected["usage"]
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == usage["prompt_tokens"]
    assert message.usage_metadata["output_tokens"] == usage["completion_tokens"]
    assert message.usage_metadata["total_tokens"] == usage["total_tokens"]
    if "cached_tokens" in usage:
        assert message.usage_metadata["input_token_details"] == {
            "cache_read": usage["cached_tokens"]
        }
    assert message.response_metadata == {
        "finish_reason": expected["finish_reason"],
        "model_name": expected["model"],
        "model_provider": "together",
        "id": expected["id"],
        "seed": expected["seed"],
    }
    assert message.id == expected["id"]
    assert message.additional_kwargs == {}
    assert chunks[-1].chunk_position == "last"
    assert [c.chunk_position for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    # Metadata and usage sit on one chunk, so no merge can double them.
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert sum(1 for c in chunks if c.response_metadata) == 1


def test_a_tool_call_stream_reports_tool_calls_once() -> None:
    # Recording 10: finish_reason "tool_calls" on two chunks; merged naively it doubles.
    datas = recorded_datas(next(r for r in chat_recordings() if r.startswith("10")))
    assert [d["choices"][0]["finish_reason"] for d in datas].count("tool_calls") == 2
    chunks = assemble(datas)
    message = summed(chunks)
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.response_metadata["model_name"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    # The name goes out as it arrives; the arguments ride on the last chunk with the metadata.
    assert [c.tool_call_chunks for c in chunks] == [
        [
            {
                "name": "get_weather",
                "args": "",
                "id": "call_vq1o4qjcezbee9rwpnnrr8jc",
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
        [
            {
                "name": None,
                "args": '{"city":"Paris"}',
                "id": None,
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
    ]


def test_a_length_stream_keeps_the_token_on_the_finish_chunk() -> None:
    datas = recorded_datas(next(r for r in chat_recordings() if r.startswith("06")))
    chunks = assemble(datas)
    assert chunks[-1].content == ")"
    assert [c.content for c in chunks[:3]] == ["Deep", " learning", " is"]
    assert len(chunks) == len(datas)


def test_parallel_tool_calls_stay_apart_by_index() -> None:
    datas = [
        chat_chunk(tool_calls=[tool_start("a", "call_a", 0)]),
        chat_chunk(tool_calls=[tool_start("b", "call_b", 1)]),
        chat_chunk(tool_calls=[tool_args('{"x": ', 0), tool_args('{"y": 2}', 1)]),
        chat_chunk(tool_calls=[tool_args("1}", 0)]),
        chat_chunk("", "tool_calls", usage=USAGE),
    ]
    message = summed(assemble(datas))
    assert [(c["name"], c["id"], c["args"]) for c in message.tool_calls] == [
        ("a", "call_a", {"x": 1}),
        ("b", "call_b", {"y": 2}),
    ]


def test_fragments_of_one_call_held_together_are_joined() -> None:
    # Arguments split over two finish-reason chunks end up in one held chunk: one entry.
    datas = [
        chat_chunk(tool_calls=[tool_start("f", "call_f")]),
        chat_chunk("", "tool_calls", tool_calls=[tool_args('{"q": ')]),
        chat_chunk("", "tool_calls", tool_calls=[tool_args('"z"}')], usage=USAGE),
    ]
    chunks = assemble(datas)
    assert len(chunks[-1].tool_call_chunks) == 1
    assert summed(chunks).tool_calls[0]["args"] == {"q": "z"}


def test_a_stream_that_goes_on_after_a_finish_reason_loses_nothing() -> None:
    datas = [chat_chunk("a"), chat_chunk("b", "stop"), chat_chunk("c"), chat_chunk("", "stop")]
    chunks = assemble(datas)
    assert [c.content for c in chunks] == ["a", "bc", ""]
    assert summed(chunks).response_metadata["finish_reason"] == "stop"


def test_reasoning_goes_to_additional_kwargs_never_content() -> None:
    datas = [
        chat_chunk(reasoning="Think"),
        chat_chunk(reasoning=" hard."),
        chat_chunk("Answer"),
        chat_chunk("", "stop", usage=USAGE),
    ]
    # Some servers name it reasoning_content.
    datas[1]["choices"][0]["delta"]["reasoning_content"] = datas[1]["choices"][0]["delta"].pop(
        "reasoning"
    )
    message = summed(assemble(datas))
    assert message.content == "Answer"
    assert message.additional_kwargs == {"reasoning_content": "Think hard."}
    blocks = message.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": "Think hard."}
    assert blocks[1]["type"] == "text"


def test_usage_becomes_usage_metadata() -> None:
    assert usage_metadata(USAGE) == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_token_details": {"cache_read": 2},
    }
    openai_shape = {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert usage_metadata(openai_shape) == {
        "input_tokens": 7,
        "output_tokens": 3,
        "total_tokens": 10,
        "input_token_details": {"cache_read": 4},
        "output_token_details": {"reasoning": 2},
    }


def test_usage_inside_the_choice_is_found() -> None:
    # Some models (Kimi) put usage in choices[0] instead of at the top level.
    data = chat_chunk("", "stop")
    data["choices"][0]["usage"] = USAGE
    message = summed(assemble([chat_chunk("x"), data]))
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 15


def test_no_usage_means_no_usage_metadata() -> None:
    message = summed(assemble([chat_chunk("x"), chat_chunk("", "stop")]))
    assert message.usage_metadata is None


def test_logprobs_only_when_asked_and_only_on_the_last_chunk() -> None:
    datas = [chat_chunk("a", logprobs=-0.5), chat_chunk("b", "stop", logprobs=-1.0)]
    datas[0]["choices"][0]["logprobs"] = -0.5
    datas[1]["choices"][0]["logprobs"] = -1.0
    assert "logprobs" not in summed(assemble(datas)).response_metadata
    chunks = assemble(datas, logprobs=True)
    assert summed(chunks).response_metadata["logprobs"] == {
        "tokens": ["a", "b"],
        "token_logprobs": [-0.5, -1.0],
    }
    assert "logprobs" not in chunks[0].response_metadata


def test_logprobs_in_object_shapes() -> None:
    together = {"tokens": ["a", "b"], "token_logprobs": [-0.1, -0.2]}
    openai = {"content": [{"token": "c", "logprob": -0.3}]}
    datas = [chat_chunk("ab"), chat_chunk("c"), chat_chunk("", "stop")]
    datas[0]["choices"][0]["logprobs"] = together
    datas[1]["choices"][0]["logprobs"] = openai
    assert summed(assemble(datas, logprobs=True)).response_metadata["logprobs"] == {
        "tokens": ["a", "b", "c"],
        "token_logprobs": [-0.1, -0.2, -0.3],
    }


def test_role_only_chunks_emit_nothing() -> None:
    assert assemble([chat_chunk(""), chat_chunk("", "stop")])[0].chunk_position == "last"


def test_the_requested_model_is_named_when_the_stream_names_none() -> None:
    data = chat_chunk("x", "stop")
    del data["model"]
    assert summed(assemble([data])).response_metadata["model_name"] == "requested/model"


def test_a_body_that_ends_without_done_or_finish_is_an_error() -> None:
    assembler = ChatAssembler(model="m", with_logprobs=False)
    assembler.add(parse_chat_chunk("message", json.dumps(chat_chunk("half"))))
    assert assembler.partial_text == "half"
    with pytest.raises(TogetherStreamError, match="incomplete"):
        assembler.finish(saw_done=False)


def test_a_finish_reason_without_done_is_enough() -> None:
    assembler = ChatAssembler(model="m", with_logprobs=False)
    assert assembler.add(parse_chat_chunk("message", json.dumps(chat_chunk("x", "stop")))) is None
    assert assembler.partial_text == "x"
    assert assembler.finish(saw_done=False).message.content == "x"


@pytest.mark.parametrize(
    ("event", "data", "match"),
    [
        ("message", '{"error": {"message": "overloaded", "type": "server_error"}}', "overloaded"),
        ("message", '{"error": "plain words"}', "plain words"),
        ("error", '{"message": "nope"}', "error"),
        ("error", "not json at all", "not json at all"),
        ("message", '{"choices": [', "not a valid chat chunk"),
        ("message", "[1, 2]", "not a valid chat chunk"),
        ("message", json.dumps(chat_chunk("x", "error")), "finish_reason 'error'"),
        (
            "message",
            json.dumps({"choices": [{"index": 0, "delta": {}}, {"index": 1, "delta": {}}]}),
            "more than one choice",
        ),
        ("message", json.dumps({"choices": [{"index": 1, "delta": {}}]}), "more than one"),
    ],
)
def test_error_events_and_garbage_raise_stream_errors(event: str, data: str, match: str) -> None:
    with pytest.raises(TogetherStreamError, match=match):
        parse_chat_chunk(event, data)


def test_an_error_object_keeps_its_type_and_the_chunk_id() -> None:
    data = {"id": "req-9", "error": {"message": "boom", "type": "server_error"}}
    with pytest.raises(TogetherStreamError) as info:
        parse_chat_chunk("message", json.dumps(data))
    assert (info.value.error_type, info.value.request_id) == ("server_error", "req-9")


def test_parse_reads_every_field() -> None:
    data = chat_chunk(
        "hi",
        "tool_calls",
        tool_calls=[tool_start("f", "call_1")],
        reasoning="r",
        usage=USAGE,
        seed=15924764223251450000,
    )
    assert parse_chat_chunk("message", json.dumps(data)) == ChatDelta(
        content="hi",
        reasoning="r",
        tool_calls=(ToolCallDelta(index=0, id="call_1", name="f", arguments=""),),
        finish_reason="tool_calls",
        usage=USAGE,
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        id="chat-test-1",
        seed=15924764223251450000,
        logprobs=None,
    )


def test_tolerant_of_absent_and_null_fields() -> None:
    assert parse_chat_chunk("message", "{}") == ChatDelta()
    assert parse_chat_chunk("message", '{"choices": []}') == ChatDelta()
    nulls = {"choices": [{"delta": {"content": None, "tool_calls": None}, "text": None}]}
    assert parse_chat_chunk("message", json.dumps(nulls)) == ChatDelta()
    # A choice without a delta still carries its text.
    assert parse_chat_chunk("message", '{"choices": [{"text": "t"}]}').content == "t"
    # A tool-call fragment without an index is placed by its position.
    no_index = {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "{}"}}]}}]}
    assert parse_chat_chunk("message", json.dumps(no_index)).tool_calls[0].index == 0


# Property: however the answer is cut into chunks, and wherever Together repeats the finish
# reason, the summed message is exact and its metadata is never doubled.
_pieces = st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=8)


@given(
    text=_pieces,
    reasoning=st.lists(st.text(min_size=1, max_size=5), max_size=4),
    args=st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=4),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_any_cut_adds_up_exactly(
    text: list[str], reasoning: list[str], args: dict[str, int], cuts: list[int], repeats: int
) -> None:
    arguments = json.dumps(args, ensure_ascii=False)
    bounds = sorted({0, len(arguments), *(min(c, len(arguments)) for c in cuts)})
    fragments = [arguments[a:b] for a, b in zip(bounds, bounds[1:])]
    datas = [chat_chunk(reasoning=r) for r in reasoning]
    datas += [chat_chunk(t) for t in text]
    datas.append(chat_chunk(tool_calls=[tool_start("f", "call_1")]))
    datas += [chat_chunk(tool_calls=[tool_args(f)]) for f in fragments]
    datas += [chat_chunk("", "tool_calls") for _ in range(repeats - 1)]
    datas.append(chat_chunk("", "tool_calls", usage=USAGE, seed=2**64 + 1))
    chunks = assemble(datas)
    message = summed(chunks)
    assert message.content == "".join(text)
    assert message.additional_kwargs.get("reasoning_content", "") == "".join(reasoning)
    assert message.tool_calls == [{"name": "f", "args": args, "id": "call_1", "type": "tool_call"}]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.response_metadata["seed"] == 2**64 + 1
    assert message.usage_metadata == usage_metadata(USAGE)
    assert chunks[-1].chunk_position == "last"


def test_usage_in_a_separate_chunk_with_no_choices_is_kept() -> None:
    # OpenAI's way (and the emulator's X-Emulator-Usage: separate-chunk): usage after the
    # finish chunk, with empty choices.
    usage_only = {"id": "chat-test-1", "model": "m", "choices": [], "usage": USAGE}
    chunks = assemble([chat_chunk("a"), chat_chunk("b", "stop"), usage_only])
    message = summed(chunks)
    assert message.content == "ab"
    assert message.usage_metadata == usage_metadata(USAGE)
    assert message.response_metadata["finish_reason"] == "stop"
    assert sum(1 for c in chunks if c.usage_metadata) == 1


def test_msgspec_and_pydantic_decode_every_recorded_chat_chunk_alike() -> None:
    # The fast decoder is only a quicker route to the same dicts as the pydantic schema.
    from langchain_together_stream._wire.chat import _CHUNK

    datas = [
        line.removeprefix("data:").strip()
        for path in sorted(shared_path("together").glob("*-v1-chat-*.sse"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("data:") and "[DONE]" not in line
    ]
    assert len(datas) > 50
    for data in datas:
        assert _CHUNK.fast.decode(data) == _CHUNK.checked.validate_json(data)
