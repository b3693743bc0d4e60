"""Together's ``/v1/chat/completions`` JSON shapes, as recorded.

Key order and field sets follow recordings 09-12 in
``/work/shared/conformance/together`` (2026, Llama-3.3-70B):

- every delta carries ``role: "assistant"``, ``token_id`` and ``content``;
  choices carry ``text`` (a copy of the content), ``logprobs`` and ``seed``;
- a text stream ends with an empty chunk (eos token id) holding
  ``finish_reason: "stop"``, a 64-bit ``seed`` and ``usage`` with a top-level
  ``cached_tokens``; a ``length`` stream's last chunk still carries its last token;
- a tool-call stream opens with a chunk with a non-standard ``choices[0].role`` and
  empty content, sends each call as a start chunk (``index``, ``id``, ``type``,
  ``function.name``, ``arguments: ""``) and an arguments chunk (the whole JSON), the
  last of which has ``finish_reason: "tool_calls"``, then a final chunk with
  ``finish_reason: "tool_calls"`` again plus ``seed`` and ``usage``. Its chunks have
  no ``seed`` and no ``usage`` key before the final one;
- reasoning arrives as ``delta.reasoning`` with empty content, before the content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_together_stream.emulator._chat import ChatPlan
from langchain_together_stream.emulator._text import EOS_TOKEN_ID, Token
from langchain_together_stream.emulator._wire import dumps

__all__ = [
    "USAGE_MODES",
    "ChunkContext",
    "chat_body",
    "chat_events",
    "chat_usage",
    "usage_placement",
]

#: ``X-Emulator-Usage`` values.
USAGE_MODES = ("always", "when-asked", "separate-chunk")


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk of one response repeats, and what the request asked for."""

    request_id: str
    created: int
    model: str
    seed: int
    logprobs: bool
    usage: str = "finish"
    cached_tokens: int = 0
    top_logprobs: bool = False


def usage_placement(req: Mapping[str, Any], mode: str | None) -> str:
    """Where a stream's usage goes: ``"finish"`` chunk, its own ``"chunk"``, or ``"none"``.

    Args:
        req: The request JSON (``stream``, ``stream_options.include_usage``).
        mode: The ``X-Emulator-Usage`` header: ``always`` (default; Together sends
            usage on the finish chunk unasked), ``when-asked`` (on the finish chunk
            only with ``include_usage``, so a test can prove the client asks) or
            ``separate-chunk`` (OpenAI's way: only with ``include_usage``, in an extra
            chunk with empty ``choices`` after the finish chunk).

    Raises:
        ValueError: Unknown mode.
    """
    mode = (mode or "always").strip().lower()
    if mode not in USAGE_MODES:
        msg = f"X-Emulator-Usage must be one of {', '.join(USAGE_MODES)}"
        raise ValueError(msg)
    options = req.get("stream_options")
    asked = not req.get("stream") or (
        isinstance(options, Mapping) and bool(options.get("include_usage"))
    )
    if mode == "always" or (asked and mode == "when-asked"):
        return "finish"
    return "chunk" if asked else "none"


def chat_usage(plan: ChatPlan, cached_tokens: int = 0) -> dict[str, int]:
    """``usage`` as Together sends it: OpenAI's three counts plus ``cached_tokens``."""
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        "cached_tokens": cached_tokens,
    }


def chat_events(plan: ChatPlan, ctx: ChunkContext) -> list[str]:
    """Render every ``data:`` payload of a streamed answer, ``[DONE]`` excluded."""
    events = _tool_events(plan, ctx) if plan.tool_calls else _text_events(plan, ctx)
    if ctx.usage == "chunk":
        events.append(
            dumps(
                {
                    "id": ctx.request_id,
                    "object": "chat.completion.chunk",
                    "created": ctx.created,
                    "choices": [],
                    "model": ctx.model,
                    "usage": chat_usage(plan, ctx.cached_tokens),
                }
            )
        )
    return events


def chat_body(plan: ChatPlan, ctx: ChunkContext) -> dict[str, Any]:
    """Build the non-stream ``chat.completion`` body."""
    tokens = plan.content.tokens
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.content.text if tokens or not plan.tool_calls else None,
        "tool_calls": [
            {
                "index": i,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(plan.tool_calls)
        ],
    }
    if plan.reasoning:
        message["reasoning"] = "".join(t.text for t in plan.reasoning)
    logprobs = None
    if ctx.logprobs:
        logprobs = {
            "tokens": [t.text for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "token_ids": [t.id for t in tokens],
        }
        if ctx.top_logprobs:
            logprobs["top_logprobs"] = [{t.text: t.logprob} for t in tokens]
    return {
        "id": ctx.request_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "prompt": [],
        "choices": [
            {
                "finish_reason": plan.finish_reason,
                "seed": ctx.seed,
                "logprobs": logprobs,
                "index": 0,
                "message": message,
            }
        ],
        "usage": chat_usage(plan, ctx.cached_tokens),
    }


def _chunk(ctx: ChunkContext, choice: dict[str, Any], *, usage: Any = None, tools: bool) -> str:
    obj: dict[str, Any] = {
        "id": ctx.request_id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "choices": [choice],
        "model": ctx.model,
    }
    # 2026 tool-call streams omit the key until the last chunk; text streams send null.
    if not tools or usage is not None:
        obj["usage"] = usage
    return dumps(obj)


def _choice(
    ctx: ChunkContext,
    delta: dict[str, Any],
    *,
    text: str = "",
    logprob: float | None = None,
    finish_reason: str | None = None,
    seed: int | None = None,
    with_seed: bool = True,
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "text": text,
        "logprobs": logprob if ctx.logprobs else None,
        "finish_reason": finish_reason,
    }
    if with_seed:
        choice["seed"] = seed
    choice["delta"] = delta
    return choice


def _content_delta(token: Token) -> dict[str, Any]:
    return {"token_id": token.id, "role": "assistant", "content": token.text}


def _reasoning_events(plan: ChatPlan, ctx: ChunkContext, *, tools: bool) -> list[str]:
    return [
        _chunk(
            ctx,
            _choice(
                ctx,
                {"token_id": tok.id, "role": "assistant", "content": "", "reasoning": tok.text},
                logprob=tok.logprob,
                with_seed=not tools,
            ),
            tools=tools,
        )
        for tok in plan.reasoning
    ]


def _usage_for(plan: ChatPlan, ctx: ChunkContext) -> dict[str, int] | None:
    return chat_usage(plan, ctx.cached_tokens) if ctx.usage == "finish" else None


def _text_events(plan: ChatPlan, ctx: ChunkContext) -> list[str]:
    events = _reasoning_events(plan, ctx, tools=False)
    tokens = list(plan.content.tokens)
    if plan.finish_reason == "length" and tokens:
        body, last = tokens[:-1], tokens[-1]
    else:
        body, last = tokens, Token("", EOS_TOKEN_ID, 0.0)
    events.extend(
        _chunk(
            ctx,
            _choice(ctx, _content_delta(tok), text=tok.text, logprob=tok.logprob),
            tools=False,
        )
        for tok in body
    )
    final = _choice(
        ctx,
        _content_delta(last),
        text=last.text,
        logprob=last.logprob,
        finish_reason=plan.finish_reason,
        seed=ctx.seed,
    )
    events.append(_chunk(ctx, final, usage=_usage_for(plan, ctx), tools=False))
    return events


def _tool_events(plan: ChatPlan, ctx: ChunkContext) -> list[str]:
    opening = {
        "index": 0,
        "role": "assistant",
        "text": "",
        "logprobs": None,
        "finish_reason": None,
        "delta": {"token_id": None, "role": "assistant", "content": ""},
    }
    events = [_chunk(ctx, opening, tools=True)]
    events.extend(_reasoning_events(plan, ctx, tools=True))
    events.extend(
        _chunk(
            ctx,
            _choice(ctx, _content_delta(tok), text=tok.text, logprob=tok.logprob, with_seed=False),
            tools=True,
        )
        for tok in plan.content.tokens
    )
    last_index = len(plan.tool_calls) - 1
    for i, call in enumerate(plan.tool_calls):
        start = {
            "index": i,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        args = {"index": i, "function": {"arguments": call.arguments}}
        for part, finish in ((start, None), (args, "tool_calls" if i == last_index else None)):
            delta = {"token_id": None, "role": "assistant", "content": "", "tool_calls": [part]}
            choice = _choice(ctx, delta, finish_reason=finish, with_seed=False)
            choice["logprobs"] = None
            events.append(_chunk(ctx, choice, tools=True))
    final = _choice(
        ctx,
        {"token_id": EOS_TOKEN_ID, "role": "assistant", "content": ""},
        finish_reason="tool_calls",
        seed=ctx.seed,
    )
    final["logprobs"] = None
    events.append(_chunk(ctx, final, usage=_usage_for(plan, ctx), tools=True))
    return events
