"""The web UI's relay without a browser: a reader that leaves closes the upstream stream.

In every mode (completion, chat model, agent), the page going away mid-answer must stop
the model's stream, so the emulator sees its client hang up before the answer is complete.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pytest

from langchain_together_stream import ChatTogether, TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator
from tests.unit_tests.test_examples import load

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
PROMPTS = {
    "completion": "Alan Turing was",
    "chat": "Tell me about Alan Turing.",
    "agent": "Use multiply to work out 12 times 7.",
}


@contextmanager
def relay() -> Iterator[tuple[int, TogetherEmulator]]:
    app = load("web_ui/app.py")
    # Slow enough that every answer is still being written when the reader leaves.
    with TogetherEmulator(tokens_per_second=5) as emulator:
        settings = {"model": MODEL, "api_key": "emulator-key", "base_url": emulator.base_url}
        server = app.make_server(
            TogetherLLM(**settings, max_tokens=60), chat=ChatTogether(**settings, max_tokens=60)
        )
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield server.server_address[1], emulator
        finally:
            server.shutdown()
            server.server_close()


def first_event(response: BinaryIO, name: str) -> str:
    """Read lines until the first SSE `name` event; return its data line."""
    seen = None
    for _ in range(1000):
        line = response.readline().decode().rstrip("\r\n")
        if line == f"event: {name}":
            seen = name
        elif seen and line.startswith("data: "):
            return line
    pytest.fail(f"no {name!r} event")


@pytest.mark.parametrize("mode", ["completion", "chat", "agent"])
def test_a_reader_that_leaves_closes_the_models_stream(mode: str) -> None:
    with relay() as (port, emulator):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        query = f"mode={mode}&prompt={PROMPTS[mode].replace(' ', '+')}"
        sock.sendall(f"GET /stream?{query} HTTP/1.1\r\nHost: page\r\n\r\n".encode())
        with sock, sock.makefile("rb") as response:
            assert response.readline().startswith(b"HTTP/1.0 200")
            if mode == "agent":
                call, result = first_event(response, "tool"), first_event(response, "tool")
                assert "multiply" in call
                assert "multiply -> 84" in result
            first_event(response, "token")
            sock.shutdown(socket.SHUT_RDWR)  # the page goes away mid-answer
        for _ in range(200):
            last = emulator.requests[-1]
            if last.disconnected_at is not None or last.finished_at is not None:
                break
            time.sleep(0.05)
        paths = [request.path for request in emulator.requests]
    expected = "/v1/completions" if mode == "completion" else "/v1/chat/completions"
    assert paths == [expected] * (2 if mode == "agent" else 1)
    # The model's stream was closed while the emulator was still writing the answer.
    assert last.disconnected_at is not None
    assert last.tokens_sent < 60


def read_all(port: int, mode: str) -> str:
    """One whole answer through the relay: the text of its token events, up to `done`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        query = f"mode={mode}&prompt={PROMPTS[mode].replace(' ', '+')}"
        sock.sendall(f"GET /stream?{query} HTTP/1.1\r\nHost: page\r\n\r\n".encode())
        with sock.makefile("rb") as response:
            body = response.read().decode()
    assert "event: done" in body
    tokens = [
        json.loads(line[6:])["token"]
        for block in body.split("\n\n")
        if block.startswith("event: token")
        for line in block.splitlines()
        if line.startswith("data: ")
    ]
    return "".join(tokens)


def test_each_agent_request_runs_on_its_own_event_loop() -> None:
    # The agent's graph runs on a fresh loop per request; the model's async pool must follow.
    with relay() as (port, emulator):
        answers = [read_all(port, "agent") for _ in range(2)]
        disconnected = [request.disconnected_at for request in emulator.requests]
    assert answers == ["The multiply tool returned 84."] * 2
    assert disconnected == [None] * 4
