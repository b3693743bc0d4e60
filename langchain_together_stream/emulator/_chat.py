"""What the emulated chat model answers: validation, scripted tool calls, JSON, reasoning.

``plan`` turns a ``/v1/chat/completions`` request into a ``ChatPlan`` (reasoning
tokens, content tokens, tool calls, finish reason, prompt size); ``_chat_wire``
turns the plan into Together's chunks. Default behaviour, when no responder
answers:

- tools bound, ``tool_choice`` not ``"none"`` and the last message not a tool
  result: call a tool. A named ``tool_choice`` picks it; otherwise every tool named
  in the last user message, in the order they are mentioned (parallel calls);
  otherwise the first tool. Arguments come from the tool's JSON schema and the
  prompt (see ``_schema``).
- after tool results: a sentence that quotes each tool's result.
- ``response_format`` ``json_schema`` (or ``json_object`` with a ``schema``): a JSON
  object valid for the schema; plain ``json_object``: an object whose keys are the
  quoted words of the prompt (or ``{"answer": ...}``).
- otherwise corpus text, deterministic for the conversation and seed.

Reasoning tokens come first when the request asks for reasoning
(``reasoning: {"enabled": true}``, ``reasoning_effort``) or the model name says it
reasons (``r1``, ``reason``, ``think``, ``qwq``).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_together_stream.emulator import _text
from langchain_together_stream.emulator._schema import Hints, value_for

__all__ = [
    "ChatPlan",
    "ChatReply",
    "ChatRequestError",
    "ChatResponder",
    "ChatToolCall",
    "PlannedCall",
    "last_user_text",
    "plan",
]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_REASONING_MODEL = re.compile(r"(?<![a-z0-9])r1(?![0-9])|reason|think|qwq", re.IGNORECASE)
_CALL_ID_ALPHABET = string.ascii_lowercase + string.digits
_REASONING_TOKENS = 24
_JSON_KEY = re.compile(r"(?<!\w)['\"]([A-Za-z_][A-Za-z0-9_]*)['\"](?!\w)")


@dataclass(frozen=True)
class ChatToolCall:
    """A tool call a responder wants the model to make.

    Attributes:
        name: The function name.
        arguments: The arguments, as a mapping (sent as compact JSON) or as the exact
            string to send (which may be invalid JSON, to test a client's handling).
        id: The call id; None generates one like ``call_<24 chars>``.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class ChatReply:
    """A scripted chat answer.

    Attributes:
        content: The text to stream (tokenized; ``max_tokens`` and ``stop`` apply).
        tool_calls: Tool calls to stream after the text; non-empty ends the stream
            with ``finish_reason: "tool_calls"`` (unless ``max_tokens`` cut the text,
            which ends it with ``"length"`` and no calls).
        reasoning: Text to stream as ``delta.reasoning`` before the content, whether
            or not the request asked for reasoning; None follows the request.
    """

    content: str = ""
    tool_calls: Sequence[ChatToolCall] = ()
    reasoning: str | None = None


#: ``(messages, request JSON) -> ChatReply | str | None``; None keeps the default answer.
ChatResponder = Callable[[list[dict[str, Any]], Mapping[str, Any]], "ChatReply | str | None"]


class ChatRequestError(Exception):
    """A chat request Together would refuse with 400 ``invalid_request_error``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class PlannedCall:
    """One tool call as it goes on the wire."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatPlan:
    """Everything the wire layer needs to answer one chat request.

    Attributes:
        reasoning: Tokens for ``delta.reasoning``, in order (may be empty).
        content: Tokens for ``delta.content`` and why they ended (``eos``/``length``/``stop``).
        tool_calls: Calls to stream after the content.
        prompt_tokens: ``usage.prompt_tokens``.
    """

    reasoning: tuple[_text.Token, ...]
    content: _text.Completion
    tool_calls: tuple[PlannedCall, ...]
    prompt_tokens: int

    @property
    def finish_reason(self) -> str:
        """Together's chat finish reason: ``tool_calls``, ``length`` or ``stop``."""
        if self.tool_calls:
            return "tool_calls"
        return "length" if self.content.finish_reason == "length" else "stop"

    @property
    def completion_tokens(self) -> int:
        """``usage.completion_tokens``: reasoning, content, call and end tokens."""
        calls = sum(_text.count_tokens(c.name + c.arguments) + 1 for c in self.tool_calls)
        end = 0 if self.finish_reason == "length" else 1
        return len(self.reasoning) + len(self.content.tokens) + calls + end


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last user message ("" if there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def plan(
    req: Mapping[str, Any],
    *,
    responder: ChatResponder | None,
    natural_tokens: int | None,
    reject_required: bool,
) -> ChatPlan:
    """Validate a chat request and decide its answer.

    Args:
        req: The request JSON.
        responder: The emulator's chat responder, if any.
        natural_tokens: ``X-Emulator-Tokens``: the corpus answer's exact length.
        reject_required: Refuse ``tool_choice: "required"`` as Together was reported to.

    Returns:
        The plan.

    Raises:
        ChatRequestError: The request is invalid.
    """
    model = req.get("model")
    if not isinstance(model, str) or not model:
        msg = "Invalid request"
        raise ChatRequestError(msg, "model")
    messages = _messages(req)
    tools = _tools(req)
    choice = _tool_choice(req, tools, reject_required=reject_required)
    max_tokens, stop = _limits(req)
    prompt = last_user_text(messages)
    seed = req.get("seed")
    key = json.dumps(messages, sort_keys=True, ensure_ascii=False)

    scripted: object = responder(messages, req) if responder is not None else None
    if scripted is None:
        reply = _default_reply(messages, tools, choice, req.get("response_format"), prompt)
    elif isinstance(scripted, str):
        reply = ChatReply(content=scripted)
    elif isinstance(scripted, ChatReply):
        reply = scripted
    else:
        msg = f"chat_responder must return ChatReply, str or None, not {type(scripted).__name__}"
        raise TypeError(msg)

    reasoning_text = reply.reasoning
    if reasoning_text is None and wants_reasoning(req):
        reasoning_text = _text.complete(
            key + "\x00reasoning", seed=seed, natural_tokens=_REASONING_TOKENS
        ).text.strip()
    reasoning = _text.complete(key, seed=seed, text=reasoning_text or "").tokens

    if reply is _CORPUS:
        # Corpus text continues a prompt (" The ..."); a chat answer starts a message.
        text = _text.complete(key, seed=seed, natural_tokens=natural_tokens).text.lstrip()
    else:
        text = reply.content
    content = _text.complete(
        key,
        seed=seed,
        max_tokens=max_tokens,
        stop=stop,
        text=text,
    )
    calls: tuple[PlannedCall, ...] = ()
    if content.finish_reason != "length":
        calls = tuple(_planned(c) for c in reply.tool_calls)
    prompt_size = _text.count_tokens(key) + (
        _text.count_tokens(json.dumps(tools, ensure_ascii=False)) if tools else 0
    )
    return ChatPlan(reasoning, content, calls, prompt_size)


def wants_reasoning(req: Mapping[str, Any]) -> bool:
    """True if the request (or its model name) asks for reasoning tokens."""
    setting = req.get("reasoning")
    if isinstance(setting, Mapping) and "enabled" in setting:
        return bool(setting["enabled"])
    effort = req.get("reasoning_effort")
    if isinstance(effort, str) and effort and effort != "none":
        return True
    model = req.get("model")
    return isinstance(model, str) and _REASONING_MODEL.search(model) is not None


# ---------------------------------------------------------------------- defaults

# The default text answer: an empty content that means "use the corpus".
_CORPUS = ChatReply(content="")


def _default_reply(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    choice: str | None,
    response_format: Any,
    prompt: str,
) -> ChatReply:
    last_role = messages[-1].get("role")
    if tools and choice != "none" and last_role not in {"tool", "function"}:
        return ChatReply(tool_calls=_scripted_calls(tools, choice, prompt))
    if last_role in {"tool", "function"}:
        return ChatReply(content=_tool_summary(messages))
    schema = _response_schema(response_format)
    if schema is not None:
        return ChatReply(content=_dumps(value_for(schema, Hints(prompt))))
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        keys = list(dict.fromkeys(_JSON_KEY.findall(prompt)))
        obj = {k: f"example {k}" for k in keys} if keys else {"answer": Hints(prompt).fallback_text}
        return ChatReply(content=_dumps(obj))
    return _CORPUS


def _scripted_calls(
    tools: list[dict[str, Any]], choice: str | None, prompt: str
) -> list[ChatToolCall]:
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    if choice is not None and choice in by_name:
        chosen = [choice]
    else:
        found = []
        lowered = prompt.lower()
        for name in by_name:
            match = re.search(rf"(?<![\w]){re.escape(name.lower())}(?![\w])", lowered)
            if match:
                found.append((match.start(), name))
        chosen = [name for _, name in sorted(found)] or [next(iter(by_name))]
    hints = Hints(prompt)
    calls = []
    for name in chosen:
        params = by_name[name].get("parameters")
        args = value_for(params, hints) if isinstance(params, Mapping) else {}
        calls.append(ChatToolCall(name, args if isinstance(args, dict) else {}))
    return calls


def _tool_summary(messages: list[dict[str, Any]]) -> str:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                names[str(call.get("id"))] = str(call["function"].get("name", "tool"))
    results = []
    for message in reversed(messages):
        if message.get("role") not in {"tool", "function"}:
            break
        name = names.get(str(message.get("tool_call_id")), message.get("name") or "tool")
        results.append(f"The {name} tool returned {_content_text(message.get('content'))}.")
    return " ".join(reversed(results))


def _response_schema(response_format: Any) -> Mapping[str, Any] | None:
    if not isinstance(response_format, Mapping):
        return None
    wrapper = response_format.get("json_schema")
    if isinstance(wrapper, Mapping) and isinstance(wrapper.get("schema"), Mapping):
        schema: Mapping[str, Any] = wrapper["schema"]
        return schema
    # Together's older form: {"type": "json_object", "schema": {...}}.
    inline = response_format.get("schema")
    return inline if isinstance(inline, Mapping) else None


def _planned(call: ChatToolCall) -> PlannedCall:
    arguments = call.arguments if isinstance(call.arguments, str) else _dumps(call.arguments)
    call_id = call.id or "call_" + "".join(secrets.choice(_CALL_ID_ALPHABET) for _ in range(24))
    return PlannedCall(call_id, call.name, arguments)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, Mapping) and p.get("type") in {"text", "input_text"}
        ]
        return " ".join(parts)
    return "" if content is None else _dumps(content)


# ---------------------------------------------------------------------- validation


def _messages(req: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        msg = "Invalid request: messages must be a non-empty list"
        raise ChatRequestError(msg, "messages")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            msg = "Invalid request: each message needs a role among " + ", ".join(sorted(_ROLES))
            raise ChatRequestError(msg, "messages")
    return messages


def _tools(req: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = req.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        msg = "Invalid request: tools must be a list"
        raise ChatRequestError(msg, "tools")
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            msg = "Invalid request: each tool needs function.name"
            raise ChatRequestError(msg, "tools")
    return tools


def _tool_choice(
    req: Mapping[str, Any], tools: list[dict[str, Any]], *, reject_required: bool
) -> str | None:
    """Return ``"none"``, a forced tool name, or None for auto."""
    choice = req.get("tool_choice")
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        return "none"
    if choice == "required":
        if reject_required:
            msg = "Invalid request"
            raise ChatRequestError(msg, "tool_choice")
        return None
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        name = choice["function"].get("name")
        if any(t["function"]["name"] == name for t in tools):
            return str(name)
    msg = "Invalid request: tool_choice must be auto, none or a bound function"
    raise ChatRequestError(msg, "tool_choice")


def _limits(req: Mapping[str, Any]) -> tuple[int | None, list[str] | None]:
    max_tokens = req.get("max_tokens", req.get("max_completion_tokens"))
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
    ):
        msg = "max_tokens must be a non-negative integer"
        raise ChatRequestError(msg, "max_tokens")
    stop = req.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        msg = "stop must be a string or a list of strings"
        raise ChatRequestError(msg, "stop")
    n = req.get("n", 1)
    if n not in (None, 1):
        msg = "n > 1 is not supported by the Together emulator (it generates one choice)"
        raise ChatRequestError(msg, "n")
    return max_tokens, stop
