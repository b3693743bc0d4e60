"""Shared pieces for the hostile-server tests: callbacks, pool inspection, a silent listener,
and `Path`, which drives one test body through the sync or the async entry points."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from langchain_together_stream import TogetherLLM

KEY = "sk-test-SECRET-0123456789"
TOKENS = ["Alan", " Turing", " was", " a", " mathematician", "."]
TEXT = "".join(TOKENS)
FAST: dict[str, Any] = {"timeout": (2.0, 0.3)}
"""Small timeouts: 2 s to connect on loopback, 0.3 s idle read."""
HANG_BOUND = 10.0
"""No failing call may take this long (the configured timeouts are far smaller)."""


class Counter(BaseCallbackHandler):
    """Counts LangChain callback events and remembers what tracing was given."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.ends = 0
        self.tokens: list[str] = []
        self.starts: list[dict[str, Any]] = []

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.starts.append({"serialized": serialized, "prompts": prompts, **kwargs})

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


def checked_out(llm: TogetherLLM) -> int:
    """Connections of `llm`'s pool that are taken and not given back (0 when none leaked)."""
    adapter = llm._transport.session(llm.max_connections).get_adapter("http://127.0.0.1")
    pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
    total = 0
    for key in pools.keys():  # noqa: SIM118 (the container refuses plain iteration)
        queue = pools[key].pool
        total += queue.maxsize - queue.qsize()
    return total


async def checked_out_async(llm: TogetherLLM) -> int:
    """Connections of `llm`'s pool for the running loop that are taken and not given back."""
    session = await llm._async_transport.session(llm.max_connections)
    return len(session.connector._acquired)  # type: ignore[union-attr]


class Path:
    """Calls `TogetherLLM` through the sync or the async entry points, from plain code.

    The async path keeps one event loop for all its calls (so its connection pool lives from
    one call to the next, as in an application) and shuts it down in `close`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop() if name == "async" else None

    def invoke(self, llm: TogetherLLM, prompt: str = "x", **kwargs: Any) -> str:
        """`invoke`, or `ainvoke` run to completion on this path's loop."""
        if self._loop is None:
            return llm.invoke(prompt, **kwargs)
        return self._loop.run_until_complete(llm.ainvoke(prompt, **kwargs))

    def stream(self, llm: TogetherLLM, prompt: str = "x", **kwargs: Any) -> list[str]:
        """Every token of `stream`, or of `astream` on this path's loop."""
        if self._loop is None:
            return list(llm.stream(prompt, **kwargs))

        async def collect() -> list[str]:
            return [token async for token in llm.astream(prompt, **kwargs)]

        return self._loop.run_until_complete(collect())

    def checked_out(self, llm: TogetherLLM) -> int:
        """Connections of the path's pool that are taken and not given back."""
        if self._loop is None:
            return checked_out(llm)
        return self._loop.run_until_complete(checked_out_async(llm))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()


@contextmanager
def silent_listener() -> Iterator[str]:
    """A port that accepts connections (kernel backlog) but never answers: a base_url."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"


def closed_port_url() -> str:
    """A loopback base_url on which nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
