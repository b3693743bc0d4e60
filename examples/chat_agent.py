"""A LangGraph tool-calling agent on ChatTogether, its tokens streamed as they arrive.

langchain's `create_agent` builds a LangGraph graph (model node, tools node) around
`ChatTogether`. `stream_mode="messages"` yields every message chunk the moment the model
streams it: the tool calls as `tool_call_chunks`, each tool's `ToolMessage`, then the final
answer token by token.

By default it runs offline: the Together emulator starts in this process and answers like a
tool-calling model (it calls the tools named in the question, with arguments built from their
schemas and the question, then answers with their results). With `--together` it talks to
Together itself, with the key in `TOGETHER_API_KEY`.

Run: python examples/chat_agent.py [--async] ["your question"]
     TOGETHER_API_KEY=... python examples/chat_agent.py --together
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.tools import tool

from langchain_together_stream import ChatTogether
from langchain_together_stream.emulator import TogetherEmulator

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
QUESTION = "Use multiply to work out 12 times 7."
SYSTEM = "You are a careful assistant. Use the tools for arithmetic and counting."


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def word_length(word: str) -> int:
    """Count the letters in a word."""
    return len(word.strip())


TOOLS = [multiply, word_length]


@dataclass
class Event:
    """One thing worth showing, in the order the graph streamed it."""

    kind: str  # "token", "tool_call" or "tool_result"
    text: str
    node: str  # the LangGraph node that produced it ("model" or "tools")


@dataclass
class Run:
    """What one agent run streamed: every event, and the answer they add up to."""

    events: list[Event] = field(default_factory=list)
    chunks: int = 0  # AIMessageChunks with answer text

    @property
    def answer(self) -> str:
        """The final answer: the tokens streamed after the last tool result."""
        tail: list[str] = []
        for event in self.events:
            if event.kind == "tool_result":
                tail = []
            elif event.kind == "token":
                tail.append(event.text)
        return "".join(tail)


def make_agent(model: ChatTogether) -> Any:
    """The agent graph: `model` with the tools bound, looping until it answers in text."""
    return create_agent(model, TOOLS, system_prompt=SYSTEM)


def _events(message: BaseMessage, metadata: dict[str, Any]) -> Iterator[Event]:
    node = str(metadata.get("langgraph_node", ""))
    if isinstance(message, AIMessageChunk):
        if message.text:
            yield Event("token", message.text, node)
        for call in message.tool_call_chunks:
            if call.get("name"):
                yield Event("tool_call", str(call["name"]), node)
    elif isinstance(message, ToolMessage):
        yield Event("tool_result", f"{message.name} -> {message.text}", node)


def stream_agent(agent: Any, question: str) -> Iterator[Event]:
    """Run the agent, yielding each token, tool call and tool result as the graph streams it.

    Leaving early (`close()`) waits for the model call in flight to finish: LangGraph's sync
    `stream` does not interrupt a running node. Use `astream_agent` to stop it at once.
    """
    inputs = {"messages": [("user", question)]}
    with closing(agent.stream(inputs, stream_mode="messages")) as stream:
        for message, metadata in stream:
            yield from _events(message, metadata)


async def astream_agent(agent: Any, question: str) -> AsyncGenerator[Event, None]:
    """`stream_agent` on the event loop (ChatTogether streams natively there, no thread).

    Leaving early (`aclose()`) cancels the model call in flight, which closes its connection
    to Together, so generation stops.
    """
    inputs = {"messages": [("user", question)]}
    async with aclosing(agent.astream(inputs, stream_mode="messages")) as stream:
        async for message, metadata in stream:
            for event in _events(message, metadata):
                yield event


def _show(event: Event, run: Run) -> None:
    run.events.append(event)
    if event.kind == "token":
        run.chunks += 1
        print(event.text, end="", flush=True)
    elif event.kind == "tool_call":
        print(f"[calling {event.text}]", flush=True)
    else:
        print(f"[{event.text}]", flush=True)


def make_model(base_url: str | None, api_key: str | None) -> ChatTogether:
    settings: dict[str, Any] = {"model": MODEL, "temperature": 0.0, "max_tokens": 300}
    if base_url is not None:
        settings["base_url"] = base_url
    if api_key is not None:
        settings["api_key"] = api_key
    return ChatTogether(**settings)


def main(
    base_url: str | None = None, api_key: str | None = "emulator-key", question: str = QUESTION
) -> Run:
    """Stream one agent run; `api_key=None` reads `TOGETHER_API_KEY`."""
    agent = make_agent(make_model(base_url, api_key))
    run = Run()
    for event in stream_agent(agent, question):
        _show(event, run)
    print()
    return run


async def amain(
    base_url: str | None = None, api_key: str | None = "emulator-key", question: str = QUESTION
) -> Run:
    """`main` on the event loop."""
    agent = make_agent(make_model(base_url, api_key))
    run = Run()
    async for event in astream_agent(agent, question):
        _show(event, run)
    print()
    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--together", action="store_true", help="use Together itself (TOGETHER_API_KEY)"
    )
    parser.add_argument("--async", dest="use_async", action="store_true", help="use astream")
    parser.add_argument("question", nargs="?", default=QUESTION)
    args = parser.parse_args()

    def run_on(base_url: str | None, api_key: str | None) -> Run:
        if args.use_async:
            return asyncio.run(amain(base_url, api_key, args.question))
        return main(base_url, api_key, args.question)

    if args.together:
        if not os.environ.get("TOGETHER_API_KEY"):
            parser.error("--together needs TOGETHER_API_KEY in the environment")
        run_on(None, None)
    else:
        with TogetherEmulator(tokens_per_second=30) as emulator:
            run_on(emulator.base_url, "emulator-key")
