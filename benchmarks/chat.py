"""The chat table of `make bench`: chat models streaming from the same loopback server.

Each client streams one `/v1/chat/completions` answer (Together's chat chunk shape, see
`benchmarks/loadserver.py`) with one `on_llm_new_token` callback handler, measured exactly as
the completions table is (`benchmarks.run.throughput`). The floor is the sum of two columns
that do only what no chat model can avoid: a bare `http.client` reader that parses each
event's JSON, and langchain-core's own cost per chunk, an in-memory `BaseChatModel._stream`
that builds one `AIMessageChunk` per token and fires the callback for it.
"""

# Imports inside the setup functions are the point: a missing peer must not break the rest.
# The report is for people: it uses the multiplication sign on purpose.
# ruff: noqa: PLC0415, RUF001

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.client import HTTPConnection, RemoteDisconnected
from typing import Any
from urllib.parse import urlsplit

from benchmarks.clients import API_KEY, MODEL, Client, OnToken, Runner, _handler

MESSAGES = [{"role": "user", "content": "Benchmark"}]
HEADING = "## Chat models"


def _ours_chat(base_url: str) -> Any:
    from langchain_together_stream import ChatTogether

    return ChatTogether(
        model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0, timeout=(10.0, 60.0)
    )


def chat_ours(base_url: str, tokens: int) -> Runner:
    """Our `ChatTogether.stream()` with one callback handler."""
    model = _ours_chat(base_url)

    def run(on_token: OnToken) -> None:
        for _ in model.stream("Benchmark", config={"callbacks": [_handler(on_token)]}):
            pass

    return run


def chat_ours_async(base_url: str, tokens: int) -> Runner:
    """Our `ChatTogether.astream()` with one callback handler, one event loop per stream."""
    model = _ours_chat(base_url)

    async def consume(on_token: OnToken) -> None:
        async for _ in model.astream("Benchmark", config={"callbacks": [_handler(on_token)]}):
            pass

    def run(on_token: OnToken) -> None:
        asyncio.run(consume(on_token))

    return run


def chat_langchain_openai(base_url: str, tokens: int) -> Runner:
    """langchain-openai's `ChatOpenAI.stream()` with one callback handler."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0)

    def run(on_token: OnToken) -> None:
        for _ in model.stream("Benchmark", config={"callbacks": [_handler(on_token)]}):
            pass

    return run


def chat_langchain_together(base_url: str, tokens: int) -> Runner:
    """langchain-together's `ChatTogether.stream()` (langchain-openai underneath)."""
    from langchain_together import ChatTogether

    model = ChatTogether(model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0)

    def run(on_token: OnToken) -> None:
        for _ in model.stream("Benchmark", config={"callbacks": [_handler(on_token)]}):
            pass

    return run


def chat_raw_floor(base_url: str, tokens: int) -> Runner:
    """Floor: http.client `read1` + split on blank lines + `json.loads` + `delta.content`."""
    parts = urlsplit(base_url)
    connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    body = json.dumps({"model": MODEL, "messages": MESSAGES, "stream": True}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    path = f"{parts.path}/chat/completions"

    def run(on_token: OnToken) -> None:
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, RemoteDisconnected):
            # The load server drops a connection idle for 60 s, which the slow peers' rounds
            # in between can exceed; the other clients' pools reconnect by themselves.
            connection.close()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
        pending = b""
        while data := response.read1(65536):
            *events, pending = (pending + data).split(b"\n\n")
            for item in events:
                if item.startswith(b"data: {"):
                    on_token(json.loads(item[6:])["choices"][0]["delta"]["content"])

    return run


def chat_core_floor(base_url: str, tokens: int) -> Runner:
    """Floor: langchain-core's own per-chunk cost, an in-memory chat `_stream`.

    Each token becomes an `AIMessageChunk` in a `ChatGenerationChunk` (built in the loop, as
    any chat model must) and goes to `on_llm_new_token`; the last chunk carries a finish
    reason, `usage_metadata` and `chunk_position="last"`, like ours (usage on one chunk makes
    langchain-core's final merge add usage across every chunk, a per-token cost of its own).
    """
    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGenerationChunk, ChatResult

    from benchmarks.loadserver import token_text

    texts = [token_text(i) for i in range(tokens)]

    def chunks() -> Iterator[ChatGenerationChunk]:
        for text in texts:
            yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        last = AIMessageChunk(
            content="",
            response_metadata={"finish_reason": "stop", "model_name": MODEL},
            usage_metadata={"input_tokens": 1, "output_tokens": 0, "total_tokens": 1},
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)

    class InMemoryChat(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "in-memory-chat"

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            raise NotImplementedError

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> Iterator[ChatGenerationChunk]:
            for chunk in chunks():
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

        async def _astream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: AsyncCallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> AsyncIterator[ChatGenerationChunk]:
            for chunk in chunks():
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    model = InMemoryChat()

    def run(on_token: OnToken) -> None:
        for _ in model.stream("Benchmark", config={"callbacks": [_handler(on_token)]}):
            pass

    return run


CHAT_CLIENTS: tuple[Client, ...] = (
    Client(
        "chat_ours",
        "ours: ChatTogether.stream",
        chat_ours,
        ("langchain_together_stream",),
        "from langchain_together_stream import ChatTogether",
    ),
    Client(
        "chat_ours_async",
        "ours: ChatTogether.astream",
        chat_ours_async,
        ("langchain_together_stream",),
        "from langchain_together_stream import ChatTogether",
    ),
    Client(
        "chat_langchain_openai",
        "langchain-openai ChatOpenAI.stream",
        chat_langchain_openai,
        ("langchain_openai",),
        "from langchain_openai import ChatOpenAI",
    ),
    Client(
        "chat_langchain_together",
        "langchain-together ChatTogether.stream",
        chat_langchain_together,
        ("langchain_together",),
        "from langchain_together import ChatTogether",
    ),
    Client(
        "chat_raw_floor",
        "floor: http.client read1 + json (chat)",
        chat_raw_floor,
        (),
        "import http.client, json",
    ),
    Client(
        "chat_core_floor",
        "floor: langchain-core in-memory chat _stream",
        chat_core_floor,
        ("langchain_core",),
        "import langchain_core.language_models.chat_models",
        network=False,
    ),
)
CHAT_BY_NAME = {client.name: client for client in CHAT_CLIENTS}


# --- where our chat CPU goes -----------------------------------------------------------------


def _stages(model: Any) -> list[tuple[str, str, Callable[[], None]]]:
    from langchain_core.messages import HumanMessage

    from langchain_together_stream._chat_chunks import ChatAssembler
    from langchain_together_stream._http import Attempts
    from langchain_together_stream._wire import DONE
    from langchain_together_stream._wire.chat import parse_chat_chunk

    messages = [HumanMessage("Benchmark")]
    request, _ = model._start(messages, None, {})
    transport = model._transport

    def reads() -> None:
        response = transport._post(request, Attempts(0), None)
        for _ in transport._read(response, Attempts(0)):
            pass

    def events() -> None:
        for _ in transport.stream_events(request):
            pass

    def parsed() -> None:
        for event in transport.stream_events(request):
            if event.data != DONE:
                parse_chat_chunk(event.event, event.data)

    def assembled() -> None:
        assembler = ChatAssembler(model=MODEL, with_logprobs=False)
        for event in transport.stream_events(request):
            if event.data == DONE:
                assembler.finish(saw_done=True)
            else:
                assembler.add(parse_chat_chunk(event.event, event.data))

    def private_stream() -> None:
        for _ in model._stream(messages):
            pass

    def public_stream() -> None:
        for _ in model.stream(messages):
            pass

    def with_callback() -> None:
        for _ in model.stream(messages, config={"callbacks": [_handler(lambda token: None)]}):
            pass

    return [
        ("HTTP reads", "_transport: urllib3 read1 per HTTP chunk", reads),
        ("SSE events", "_sse: framing + sseclient-py", events),
        ("parsed deltas", "_wire/chat: pydantic parse_chat_chunk", parsed),
        ("ChatGenerationChunks", "_chat_chunks: ChatAssembler (AIMessageChunk)", assembled),
        ("ChatTogether._stream", "chat_models: the _stream loop", private_stream),
        ("BaseChatModel.stream", "langchain-core: run manager, chunk merge", public_stream),
        ("+ one callback handler", "langchain-core: on_llm_new_token dispatch", with_callback),
    ]


def breakdown(base_url: str, tokens: int, rounds: int) -> list[tuple[str, str, float | None]]:
    """CPU µs per token after each stage of our chat path (median of `rounds`, warmed up)."""
    model = _ours_chat(base_url)
    try:
        stages = _stages(model)
    except (AttributeError, ImportError, TypeError, ValueError):
        return []
    return [(name, layer, _measure(stage, tokens, rounds)) for name, layer, stage in stages]


def _measure(stage: Callable[[], None], tokens: int, rounds: int) -> float | None:
    try:
        stage()
        samples = []
        for _ in range(rounds):
            start = time.process_time()
            stage()
            samples.append((time.process_time() - start) * 1e6 / tokens)
    except (AttributeError, TypeError):
        return None
    return statistics.median(samples)


# --- the report section ----------------------------------------------------------------------


def _format(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def targets(figures: dict[str, tuple[float, float]]) -> list[tuple[str, str, bool | None]]:
    """The issue's two chat goals on this run's figures: (goal, measured, met)."""
    found: list[tuple[str, str, bool | None]] = []
    ours = figures.get("chat_ours")
    peer = figures.get("chat_langchain_openai")
    goal = "throughput ≥ 4× langchain-openai ChatOpenAI"
    if ours and peer:
        ratio = ours[0] / peer[0]
        found.append((goal, f"{ratio:.2f}×", ratio >= 4))
    else:
        found.append((goal, "not measured", None))
    raw, core = figures.get("chat_raw_floor"), figures.get("chat_core_floor")
    goal = "CPU/token ≤ 1.3× (raw floor + core chat floor)"
    if ours and raw and core:
        ratio = ours[1] / (raw[1] + core[1])
        found.append((goal, f"{ratio:.2f}×", ratio <= 1.3))
    else:
        found.append((goal, "not measured", None))
    return found


def render(
    figures: dict[str, tuple[float, float]],
    skipped: dict[str, str],
    stages: list[tuple[str, str, float | None]],
    *,
    tokens: int,
    rounds: int,
) -> str:
    """The "Chat models" section of RESULTS.md."""
    ours = figures.get("chat_ours")
    lines = [
        HEADING,
        "",
        f"The same run, `/v1/chat/completions`: a {tokens:,}-token stream in Together's chat "
        f"chunk shape from the same load server, {rounds} rounds, each client with one "
        "`on_llm_new_token` callback handler. In brackets, the ratio to ours (client ÷ ours).",
        "",
        "| client | tokens/s | CPU µs/token |",
        "|---|---:|---:|",
    ]
    for client in CHAT_CLIENTS:
        if client.name not in figures:
            continue
        cells = []
        for index, value in enumerate(figures[client.name]):
            cell = _format(value)
            if ours and client.name != "chat_ours" and ours[index]:
                cell += f" ({value / ours[index]:.2f}×)"
            cells.append(cell)
        lines.append(f"| {client.label} | " + " | ".join(cells) + " |")
    raw, core = figures.get("chat_raw_floor"), figures.get("chat_core_floor")
    if raw and core:
        floor = raw[1] + core[1]
        cell = _format(floor) + (f" ({floor / ours[1]:.2f}×)" if ours else "")
        lines.append(f"| floor: raw reader + core chat floor | – | {cell} |")
    lines += ["", "| goal | measured | met |", "|---|---:|:---:|"]
    for goal, measured, met in targets(figures):
        verdict = {True: "yes", False: "**no**", None: "–"}[met]
        lines.append(f"| {goal} | {measured} | {verdict} |")
    if stages:
        lines += [
            "",
            "Where our chat CPU goes: the same stream stopped after each layer (CPU µs per "
            "token, cumulative; the difference between rows is that layer's cost).",
            "",
            "| up to | layer | cumulative µs/token | layer µs/token |",
            "|---|---|---:|---:|",
        ]
        previous = 0.0
        for name, layer, cumulative in stages:
            step = None if cumulative is None else cumulative - previous
            lines.append(f"| {name} | {layer} | {_format(cumulative)} | {_format(step)} |")
            if cumulative is not None:
                previous = cumulative
    if skipped:
        lines += [""]
        lines += [
            f"- skipped {CHAT_BY_NAME[name].label}: {reason}" for name, reason in skipped.items()
        ]
    return "\n".join(lines) + "\n"
