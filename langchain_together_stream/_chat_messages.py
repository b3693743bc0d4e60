"""LangChain messages to the `messages` list of Together's chat request (OpenAI's format).

System, human, AI (with its tool calls), tool and generic chat messages each become one
`{"role": ...}` object; a message's `name` is sent when set. Human content keeps its parts:
text, OpenAI `image_url` parts as given, and LangChain's standard image blocks (URL or
base64) turned into `image_url` parts. Other roles carry text only, so their parts are joined.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.block_translators.openai import convert_to_openai_image_block

from langchain_together_stream.errors import TogetherConfigurationError

# Roles as OpenAI's chat format names them; ChatMessage carries its own.
_ROLES: dict[type[BaseMessage], str] = {
    SystemMessage: "system",
    HumanMessage: "user",
    AIMessage: "assistant",
    ToolMessage: "tool",
}


def to_wire_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert a conversation to Together's `messages`.

    Args:
        messages: The conversation, oldest first.

    Returns:
        One JSON-ready object per message.

    Raises:
        TogetherConfigurationError: A message type or content part Together cannot take.
    """
    return [to_wire_message(message) for message in messages]


def to_wire_message(message: BaseMessage) -> dict[str, Any]:
    """Convert one message.

    Args:
        message: A system, human, AI, tool or chat message.

    Returns:
        The message in OpenAI's chat format.

    Raises:
        TogetherConfigurationError: A message type or content part Together cannot take.
    """
    if isinstance(message, ChatMessage):
        role = message.role
    else:
        role = next((r for cls, r in _ROLES.items() if isinstance(message, cls)), "")
    if not role:
        msg = (
            f"{type(message).__name__} cannot be sent to Together: use a system, human, AI, "
            "tool or chat message."
        )
        raise TogetherConfigurationError(msg)
    wire: dict[str, Any] = {"role": role}
    if role == "user":
        wire["content"] = _user_content(message.content)
    else:
        wire["content"] = _text(message.content)
    if message.name:
        wire["name"] = message.name
    if isinstance(message, AIMessage):
        tool_calls = _tool_calls(message)
        if tool_calls:
            wire["tool_calls"] = tool_calls
    elif isinstance(message, ToolMessage):
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _user_content(content: str | list[str | dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_user_part(part) for part in content]


def _user_part(part: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text", "")}
    if kind == "image_url":
        image_url = part.get("image_url")
        if isinstance(image_url, str):
            # LangChain's prompt templates sometimes write the URL bare.
            image_url = {"url": image_url}
        return {"type": "image_url", "image_url": image_url}
    if kind == "image":
        try:
            return convert_to_openai_image_block(part)
        except (KeyError, ValueError) as exc:
            msg = f"This image block cannot be sent to Together: {exc}"
            raise TogetherConfigurationError(msg) from exc
    msg = (
        f"Content parts of type {kind!r} cannot be sent to Together's chat endpoint; "
        "use text, image_url or image parts."
    )
    raise TogetherConfigurationError(msg)


def _text(content: str | list[str | dict[str, Any]]) -> str:
    # Reasoning, tool-use and other non-text blocks (from this or another provider's
    # answers) have no place in Together's string content; tool calls travel separately.
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "".join(texts)


def _tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [
        {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["name"],
                # Non-ASCII arguments stay readable to the model.
                "arguments": json.dumps(call["args"], ensure_ascii=False),
            },
        }
        for call in message.tool_calls
    ]
    # A call whose arguments did not parse is still part of the history the model wrote.
    calls += [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"] or "", "arguments": call["args"] or ""},
        }
        for call in message.invalid_tool_calls
    ]
    return calls
