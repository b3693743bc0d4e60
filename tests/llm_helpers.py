"""Shared pieces for the TogetherLLM tests: callback recorders, scripted replies, examples.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_together_stream import TogetherLLM
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Recorder(BaseCallbackHandler):
    """Records every LangChain LLM callback event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.events.append(("start", prompts))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.events.append(("token", token, kwargs.get("chunk")))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append(("end", response))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(("error", error))

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]


class AsyncRecorder(AsyncCallbackHandler):
    """Records tokens and errors from async callbacks."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.events.append(("token", token))

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(("error", error))


def json_error(
    status: int, message: str, kind: str, headers: list[tuple[str, str]] | None = None
) -> Reply:
    """A Together-style JSON error reply with request id "req-1"."""
    body = json.dumps(
        {"id": "req-1", "error": {"message": message, "type": kind, "param": None, "code": None}}
    )
    return Reply(
        status=status,
        headers=[("Content-Type", "application/json"), *(headers or [])],
        body=[body.encode()],
        framing="length",
    )


def paused_after_two_tokens() -> Reply:
    """Two tokens, then a 10 s pause (far longer than any test waits), then the end."""
    return Reply(
        body=[
            *sse_body(completion_chunk("a"), completion_chunk("b"), done=False),
            10.0,
            *token_stream(["c"]),
        ]
    )


def load_example(relative: str) -> ModuleType:
    """Import an example script from examples/ by its path."""
    path = EXAMPLES / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


Call = Callable[..., str]


def _invoke(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return llm.invoke(*args, **kwargs)


def _ainvoke(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return asyncio.run(llm.ainvoke(*args, **kwargs))


def _stream(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return "".join(llm.stream(*args, **kwargs))


def _astream(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    async def collect() -> str:
        return "".join([token async for token in llm.astream(*args, **kwargs)])

    return asyncio.run(collect())


CALLS = pytest.mark.parametrize(
    "call", [_invoke, _ainvoke, _stream, _astream], ids=["invoke", "ainvoke", "stream", "astream"]
)
"""Each call-time check runs through all four entry points: invoke, ainvoke, stream, astream."""


def shown(error: BaseException) -> str:
    """Everything an error shows: its formatted traceback and its attributes."""
    return "".join(traceback.format_exception(error)) + repr(error.__dict__)
