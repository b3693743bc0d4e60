"""LangChain messages to Together's chat `messages`."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_together_stream._chat_messages import to_wire_message, to_wire_messages
from langchain_together_stream.errors import TogetherConfigurationError


def test_a_conversation_keeps_every_role_in_order() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("Weather in Paris?", name="ada"),
        AIMessage(
            "",
            tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}],
        ),
        ToolMessage("18 C", tool_call_id="call_1"),
        AIMessage("It is 18 C."),
        ChatMessage(role="developer", content="Prefer Celsius."),
    ]
    assert to_wire_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?", "name": "ada"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is 18 C."},
        {"role": "developer", "content": "Prefer Celsius."},
    ]


def test_tool_call_arguments_keep_unicode_readable() -> None:
    message = AIMessage("", tool_calls=[{"name": "f", "args": {"city": "Zürich"}, "id": "c"}])
    assert to_wire_message(message)["tool_calls"][0]["function"]["arguments"] == (
        '{"city": "Zürich"}'
    )


def test_an_invalid_tool_call_is_sent_back_as_written() -> None:
    message = AIMessage(
        "",
        invalid_tool_calls=[
            {
                "name": "f",
                "args": "{not json",
                "id": "c",
                "error": None,
                "type": "invalid_tool_call",
            }
        ],
    )
    assert to_wire_message(message)["tool_calls"] == [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    ]


def test_human_content_parts_pass_in_openai_format() -> None:
    url = "https://example.com/cat.png"
    message = HumanMessage(
        content=[
            "Look:",
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
            {"type": "image_url", "image_url": url},
            {"type": "image", "url": url},
            {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
            {"type": "image", "source_type": "base64", "data": "BBBB", "mime_type": "image/jpeg"},
        ]
    )
    assert to_wire_message(message)["content"] == [
        {"type": "text", "text": "Look:"},
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,BBBB"}},
    ]


def test_other_roles_send_their_text_only() -> None:
    ai = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "hidden"},
            {"type": "text", "text": "Hello "},
            "there",
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        ]
    )
    assert to_wire_message(ai) == {"role": "assistant", "content": "Hello there"}
    system = SystemMessage(content=[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    assert to_wire_message(system) == {"role": "system", "content": "ab"}


def test_reasoning_is_not_sent_back() -> None:
    message = AIMessage("Hi", additional_kwargs={"reasoning_content": "thinking"})
    assert to_wire_message(message) == {"role": "assistant", "content": "Hi"}


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (FunctionMessage(name="f", content="x"), "FunctionMessage cannot be sent"),
        (HumanMessage(content=[{"type": "audio", "url": "a.mp3"}]), "'audio' cannot be sent"),
        (HumanMessage(content=[{"type": "image", "base64": "AA"}]), "mime_type"),
    ],
)
def test_what_together_cannot_take_is_a_configuration_error(message: object, match: str) -> None:
    with pytest.raises(TogetherConfigurationError, match=match):
        to_wire_message(message)  # type: ignore[arg-type]


@given(st.text(), st.sampled_from(["system", "user", "assistant", "tool"]))
def test_plain_text_passes_unchanged(text: str, role: str) -> None:
    message = {
        "system": SystemMessage(text),
        "user": HumanMessage(text),
        "assistant": AIMessage(text),
        "tool": ToolMessage(text, tool_call_id="t"),
    }[role]
    wire = to_wire_message(message)
    assert (wire["role"], wire["content"]) == (role, text)
