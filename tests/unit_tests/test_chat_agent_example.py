"""examples/chat_agent.py: a LangGraph agent on ChatTogether, streamed with stream_mode="messages".

Against the emulator over a real socket: the model calls the tool, the graph runs it, the
result goes back to the model, and the answer that quotes it streams token by token.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, ToolMessage

from langchain_together_stream.emulator import TogetherEmulator
from tests.unit_tests.test_examples import load


def run_sync(example: Any, base_url: str) -> Any:
    return example.main(base_url)


def run_async(example: Any, base_url: str) -> Any:
    return asyncio.run(example.amain(base_url))


@pytest.mark.parametrize("run", [run_sync, run_async], ids=["sync", "async"])
def test_the_agent_calls_the_tool_and_answers_with_its_result(run: Any) -> None:
    example = load("chat_agent.py")
    with TogetherEmulator() as emulator:
        result = run(example, emulator.base_url)
        bodies = [request.json for request in emulator.requests if request.json]

    calls = [event for event in result.events if event.kind == "tool_call"]
    results = [event for event in result.events if event.kind == "tool_result"]
    tokens = [event for event in result.events if event.kind == "token"]
    assert [(event.text, event.node) for event in calls] == [("multiply", "model")]
    assert [(event.text, event.node) for event in results] == [("multiply -> 84", "tools")]
    assert result.events.index(calls[0]) < result.events.index(results[0])
    assert result.events.index(results[0]) < result.events.index(tokens[0])
    assert {event.node for event in tokens} == {"model"}
    # The final answer quotes the tool's result, and arrived in several chunks.
    assert result.answer == "The multiply tool returned 84."
    assert result.chunks == len(tokens) > 1

    # Two model turns: the first with the tools bound, the second carrying the call and its
    # result back in OpenAI's format.
    assert len(bodies) == 2
    first, second = bodies
    assert [tool["function"]["name"] for tool in first["tools"]] == ["multiply", "word_length"]
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": example.QUESTION}
    assistant, tool = second["messages"][-2:]
    (call,) = assistant["tool_calls"]
    assert call["function"]["name"] == "multiply"
    assert json.loads(call["function"]["arguments"]) == {"a": 12, "b": 7}
    assert tool == {"role": "tool", "content": "84", "tool_call_id": call["id"], "name": "multiply"}


def test_tokens_reach_the_graph_stream_while_the_model_is_still_generating() -> None:
    example = load("chat_agent.py")
    with TogetherEmulator(tokens_per_second=40) as emulator:
        agent = example.make_agent(example.make_model(emulator.base_url, "emulator-key"))
        inputs = {"messages": [("user", example.QUESTION)]}
        seen: list[tuple[str, int]] = []
        kinds: list[str] = []
        for message, metadata in agent.stream(inputs, stream_mode="messages"):
            kinds.append(type(message).__name__)
            if isinstance(message, AIMessageChunk) and message.text:
                assert metadata["langgraph_node"] == "model"
                seen.append((message.text, emulator.requests[-1].tokens_sent))
            elif isinstance(message, ToolMessage):
                assert message.text == "84"
        total = emulator.requests[-1].tokens_sent
    assert "".join(text for text, _ in seen) == "The multiply tool returned 84."
    assert len(seen) > 1
    # Each chunk came out of the graph before the emulator had written the whole answer:
    # cause and effect, not a wall-clock bound.
    assert seen[0][1] < total
    assert len({sent for _, sent in seen}) > 1
    assert set(kinds) == {"AIMessageChunk", "ToolMessage"}


SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "chat_agent.py"


@pytest.mark.parametrize("flags", [[], ["--async"]], ids=["sync", "async"])
def test_the_script_runs_offline_by_default(flags: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *flags],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[calling multiply]",
        "[multiply -> 84]",
        "The multiply tool returned 84.",
    ]


def test_the_script_asks_for_a_key_before_calling_together() -> None:
    env = {name: value for name, value in os.environ.items() if name != "TOGETHER_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--together"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "--together needs TOGETHER_API_KEY" in done.stderr
