"""A small web app that relays tokens from TogetherLLM or ChatTogether to a browser over SSE.

The page opens an `EventSource`; the server streams the answer and forwards each token as it
arrives. When the browser goes away, the loop stops and the upstream connection to Together
is closed, so generation (and billing) stops too.

Three modes, picked on the page or with the query parameter `?mode=`:

- `completion` (default): `TogetherLLM.stream(prompt)`;
- `chat`: `ChatTogether.stream(prompt)`, the chat model's `AIMessageChunk`s;
- `agent`: the LangGraph tool-calling agent of `examples/chat_agent.py` on `ChatTogether`,
  streamed with `stream_mode="messages"`: its tool calls and results appear as `tool`
  events, its answer token by token (needs `langchain` and `langgraph`).

Run: python examples/web_ui/app.py [--port 8000]   then open the printed address
(`--port 0` picks a free port; add `?mode=chat` or `?mode=agent`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from langchain_together_stream import ChatTogether, TogetherError, TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator

PAGE = (Path(__file__).with_name("index.html")).read_bytes()
MODES = ("completion", "chat", "agent")


@functools.cache
def _chat_agent_example() -> ModuleType:
    """examples/chat_agent.py, loaded once from beside this folder (it is not a package)."""
    path = Path(__file__).resolve().parents[1] / "chat_agent.py"
    spec = importlib.util.spec_from_file_location("chat_agent_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up while being defined.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tokens(llm: TogetherLLM, prompt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for token in llm.stream(prompt):
        yield "token", {"token": token}


def _chat_tokens(chat: ChatTogether, prompt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for chunk in chat.stream(prompt):
        if chunk.text:
            yield "token", {"token": chunk.text}


def _agent_events(agent: Any, prompt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # The graph runs on an event loop of this request's own: closing its async stream cancels
    # the model call in flight (and so its connection), where LangGraph's sync `stream`
    # would let the call run to its end after the browser left.
    loop = asyncio.new_event_loop()
    events = _chat_agent_example().astream_agent(agent, prompt)
    try:
        while True:
            try:
                event = loop.run_until_complete(anext(events))
            except StopAsyncIteration:
                return
            if event.kind == "token":
                yield "token", {"token": event.text}
            else:
                yield "tool", {"kind": event.kind, "text": event.text}
    finally:
        loop.run_until_complete(events.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def make_server(
    llm: TogetherLLM, port: int = 0, chat: ChatTogether | None = None
) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 serving the page and the token stream.

    Args:
        llm: The completion model (`?mode=completion`).
        port: The port; 0 picks a free one.
        chat: The chat model for `?mode=chat` and `?mode=agent`; without it those modes
            answer with a `failure` event.
    """
    agent = _chat_agent_example().make_agent(chat) if chat is not None else None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                self._send_page()
            elif url.path == "/stream":
                query = parse_qs(url.query)
                prompt = query.get("prompt", ["Tell me a story."])[0]
                self._relay(prompt, query.get("mode", ["completion"])[0])
            else:
                self.send_error(404)

        def _send_page(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def _events(self, prompt: str, mode: str) -> Iterator[tuple[str, dict[str, Any]]]:
            if mode == "completion":
                return _tokens(llm, prompt)
            if mode not in MODES:
                return iter([("failure", {"message": f"unknown mode {mode!r}"})])
            if chat is None:
                return iter([("failure", {"message": "no chat model on this server"})])
            if mode == "chat":
                return _chat_tokens(chat, prompt)
            return _agent_events(agent, prompt)

        def _relay(self, prompt: str, mode: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            events = self._events(prompt, mode)
            try:
                for name, data in events:
                    self._event(name, data)
                self._event("done", {})
            except TogetherError as error:
                # "error" is EventSource's own event name, so failures travel as "failure".
                self._event("failure", {"message": str(error), "partial_text": error.partial_text})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser left; closing `tokens` below closes the upstream stream
            finally:
                # Closing the generator closes the model's stream and so the connection.
                close = getattr(events, "close", None)
                if close is not None:
                    close()

        def _event(self, name: str, data: dict[str, object]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the console for the tokens

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Relay TogetherLLM or ChatTogether tokens to a web page."
    )
    parser.add_argument("--port", type=int, default=8000, help="default: 8000; 0: any free port")
    args = parser.parse_args(argv)
    with TogetherEmulator(time_to_first_token=0.3, tokens_per_second=15) as emulator:
        llm = TogetherLLM(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            api_key="emulator-key",
            base_url=emulator.base_url,
            max_tokens=120,
        )
        chat = ChatTogether(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            api_key="emulator-key",
            base_url=emulator.base_url,
            max_tokens=120,
        )
        server = make_server(llm, port=args.port, chat=chat)
        host, port = server.server_address[:2]
        print(f"Open http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
        print(f"Chat model: http://{host}:{port}/?mode=chat, agent: ?mode=agent", flush=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            server.shutdown()


if __name__ == "__main__":
    main()
