"""Every real chat recording (03-12) replayed through `ChatTogether` over a socket.

Each recording is served whole and one byte at a time, on the sync and the async path, and
the message is checked against what the recording's JSON says directly: the text or the tool
call, the usage, the finish reason (once, though tool-call streams send it twice), the model,
the id and the seed.
"""

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from tests.chat_chunks import PATH_IDS, PATHS, Sync, make_chat
from tests.conftest import shared_path
from tests.scripted_server import Reply

RECORDINGS = [f"{n:02d}" for n in range(3, 13)]


def recording(number: str) -> tuple[bytes, list[dict[str, Any]]]:
    (path,) = shared_path("together").glob(f"{number}-v1-chat-*.sse")
    wire = path.read_bytes()
    lines = wire.decode().splitlines()
    datas = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    return wire, [json.loads(data) for data in datas if data != "[DONE]"]


def expected(datas: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a recording means, read from its JSON with no client code."""
    content, calls, finish, usage = "", {}, None, None
    for data in datas:
        choice = data["choices"][0]
        delta = choice.get("delta") or {}
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            known = calls.setdefault(call["index"], {"id": None, "name": None, "args": ""})
            known["id"] = known["id"] or call.get("id")
            known["name"] = known["name"] or call["function"].get("name")
            known["args"] += call["function"].get("arguments") or ""
        finish = choice.get("finish_reason") or finish
        usage = data.get("usage") or usage
    details = {"input_token_details": {"cache_read": usage.get("cached_tokens")}}
    return {
        "content": content,
        "tool_calls": [
            {"name": c["name"], "args": json.loads(c["args"]), "id": c["id"], "type": "tool_call"}
            for _, c in sorted(calls.items())
        ],
        "usage_metadata": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            **(details if "cached_tokens" in usage else {}),
        },
        "response_metadata": {
            "finish_reason": finish,
            "model_name": datas[-1]["model"],
            "model_provider": "together",
            "id": datas[-1]["id"],
            "seed": datas[-1]["choices"][0]["seed"],
        },
        "id": datas[-1]["id"],
    }


def assert_message(message: AIMessage, want: dict[str, Any], name: str) -> None:
    assert message.content == want["content"], name
    assert message.tool_calls == want["tool_calls"], name
    assert message.invalid_tool_calls == [], name
    assert message.usage_metadata == want["usage_metadata"], name
    assert message.response_metadata == want["response_metadata"], name
    assert message.id == want["id"], name
    assert message.additional_kwargs == {}, name


def deliveries(wire: bytes) -> dict[str, list[bytes | float]]:
    return {"whole": [wire], "byte at a time": [wire[i : i + 1] for i in range(len(wire))]}


@pytest.mark.parametrize("number", RECORDINGS)
@pytest.mark.parametrize("delivery", ["whole", "byte at a time"])
@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_a_recording_invoked_is_the_exact_message(
    serve: Any, number: str, delivery: str, path: Sync
) -> None:
    wire, datas = recording(number)
    server = serve(Reply(body=deliveries(wire)[delivery]))
    message = path.invoke(make_chat(server.base_url), "x")
    assert isinstance(message, AIMessage)
    assert_message(message, expected(datas), number)


@pytest.mark.parametrize("number", RECORDINGS)
@pytest.mark.parametrize("delivery", ["whole", "byte at a time"])
@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_a_recording_streamed_adds_up_to_the_exact_message(
    serve: Any, number: str, delivery: str, path: Sync
) -> None:
    wire, datas = recording(number)
    server = serve(Reply(body=deliveries(wire)[delivery]))
    chunks = path.stream(make_chat(server.base_url), "x")
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert chunks[-1].chunk_position == "last"
    assert sum(1 for chunk in chunks if chunk.usage_metadata) == 1
    assert sum(1 for chunk in chunks if chunk.response_metadata) == 1
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert_message(total, expected(datas), number)


def test_the_request_asks_for_a_stream_with_usage(serve: Any) -> None:
    wire, _ = recording("11")
    server = serve(Reply(body=[wire]))
    make_chat(server.base_url).invoke("x")
    (seen,) = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.json["stream"] is True
    assert seen.json["stream_options"] == {"include_usage": True}
