"""The clients under test, each reduced to `setup(base_url, tokens) -> run(on_token)`.

`setup` builds the client (and its connection pool); `run` streams one completion from the
load server and calls `on_token(text)` once per token from the client's own callback
mechanism. Calling `run` again reuses the pool (a warm connection); calling `setup` again
gives a cold one. Peers are imported lazily, so a missing peer only skips its column.
"""

# Imports inside the setup functions are the point: a missing peer must not break the rest.
# ruff: noqa: PLC0415

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

OnToken = Callable[[str], None]
Runner = Callable[[OnToken], None]

MODEL = "bench/model"
API_KEY = "bench-key"
PROMPT = "Benchmark"


@dataclass(frozen=True)
class Client:
    """One column of the benchmark."""

    name: str
    label: str
    setup: Callable[[str, int], Runner]
    needs: tuple[str, ...]
    imports: str
    network: bool = True

    def skip_reason(self) -> str | None:
        """Why this client cannot run here, or None."""
        missing = [module for module in self.needs if importlib.util.find_spec(module) is None]
        if missing:
            return f"not installed: {', '.join(missing)} (run `make bench` for the peers)"
        if self.name == "ours_async":
            return _native_astream_missing()
        return None


def _handler(on_token: OnToken) -> Any:
    from langchain_core.callbacks import BaseCallbackHandler

    class TokenCounter(BaseCallbackHandler):
        # Sync paths call a sync handler directly anyway; on the async path (ours_async)
        # langchain-core would otherwise run it in the loop's executor, a thread hop per token.
        run_inline = True

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            on_token(token)

    return TokenCounter()


def _ours_llm(base_url: str) -> Any:
    from langchain_together_stream import TogetherLLM

    return TogetherLLM(
        model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0, timeout=(10.0, 60.0)
    )


def ours(base_url: str, tokens: int) -> Runner:
    """`TogetherLLM.stream()` with one callback handler."""
    llm = _ours_llm(base_url)

    def run(on_token: OnToken) -> None:
        for _ in llm.stream(PROMPT, config={"callbacks": [_handler(on_token)]}):
            pass

    return run


def _native_astream_missing() -> str | None:
    from langchain_core.language_models.llms import BaseLLM

    from langchain_together_stream import TogetherLLM

    if TogetherLLM._astream is BaseLLM._astream:
        return "TogetherLLM has no native _astream on this branch yet"
    return None


def ours_async(base_url: str, tokens: int) -> Runner:
    """`TogetherLLM.astream()` with one callback handler, one event loop per stream."""
    llm = _ours_llm(base_url)

    async def consume(on_token: OnToken) -> None:
        async for _ in llm.astream(PROMPT, config={"callbacks": [_handler(on_token)]}):
            pass

    def run(on_token: OnToken) -> None:
        asyncio.run(consume(on_token))

    return run


def langchain_openai(base_url: str, tokens: int) -> Runner:
    """`langchain_openai.OpenAI.stream()` with one callback handler."""
    from langchain_openai import OpenAI

    llm = OpenAI(model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0)  # type: ignore[call-arg,arg-type]

    def run(on_token: OnToken) -> None:
        for _ in llm.stream(PROMPT, config={"callbacks": [_handler(on_token)]}):
            pass

    return run


def together_sdk(base_url: str, tokens: int) -> Runner:
    """The official SDK: `client.completions.create(stream=True)`."""
    from together import Together

    root = base_url.removesuffix("/v1")  # the SDK adds /v1 itself
    client = Together(api_key=API_KEY, base_url=root, max_retries=0)

    def run(on_token: OnToken) -> None:
        stream = client.completions.create(model=MODEL, prompt=PROMPT, stream=True)
        for chunk in stream:
            if chunk.choices:
                on_token(chunk.choices[0].text or "")

    return run


def requests_sseclient(base_url: str, tokens: int) -> Runner:
    """Together's streaming guide: `SSEClient(requests.post(..., stream=True))`."""
    import requests
    import sseclient

    session = requests.Session()
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    payload = {"model": MODEL, "prompt": PROMPT, "stream": True}

    def run(on_token: OnToken) -> None:
        response = session.post(
            f"{base_url}/completions", json=payload, headers=headers, stream=True, timeout=60
        )
        try:
            for event in sseclient.SSEClient(response).events():
                if event.data != "[DONE]":
                    on_token(json.loads(event.data)["choices"][0]["text"])
        finally:
            response.close()

    return run


def raw_floor(base_url: str, tokens: int) -> Runner:
    """Floor: http.client `read1` + split on blank lines + `json.loads`, nothing else."""
    parts = urlsplit(base_url)
    connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    body = json.dumps({"model": MODEL, "prompt": PROMPT, "stream": True}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    path = f"{parts.path}/completions"

    def run(on_token: OnToken) -> None:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        pending = b""
        while data := response.read1(65536):
            *events, pending = (pending + data).split(b"\n\n")
            for item in events:
                if item.startswith(b"data: {"):
                    on_token(json.loads(item[6:])["choices"][0]["text"])

    return run


def core_floor(base_url: str, tokens: int) -> Runner:
    """Floor: langchain-core's own per-token cost, an in-memory `_stream` of built chunks."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models.llms import LLM
    from langchain_core.outputs import GenerationChunk

    from benchmarks.loadserver import token_text

    chunks = [GenerationChunk(text=token_text(i)) for i in range(tokens)]
    chunks.append(GenerationChunk(text="", generation_info={"finish_reason": "length"}))

    class InMemoryLLM(LLM):
        @property
        def _llm_type(self) -> str:
            return "in-memory"

        def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
            return "".join(chunk.text for chunk in chunks)

        def _stream(
            self,
            prompt: str,
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> Iterator[GenerationChunk]:
            for chunk in chunks:
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    llm = InMemoryLLM()

    def run(on_token: OnToken) -> None:
        for _ in llm.stream(PROMPT, config={"callbacks": [_handler(on_token)]}):
            pass

    return run


CLIENTS: tuple[Client, ...] = (
    Client(
        "ours",
        "ours: TogetherLLM.stream",
        ours,
        ("langchain_together_stream",),
        "import langchain_together_stream",
    ),
    Client(
        "ours_async",
        "ours: TogetherLLM.astream",
        ours_async,
        ("langchain_together_stream",),
        "import langchain_together_stream",
    ),
    Client(
        "langchain_openai",
        "langchain-openai OpenAI.stream",
        langchain_openai,
        ("langchain_openai",),
        "import langchain_openai",
    ),
    Client(
        "together",
        "together SDK completions.create",
        together_sdk,
        ("together",),
        "import together",
    ),
    Client(
        "requests_sseclient",
        "requests + sseclient-py (guide)",
        requests_sseclient,
        ("requests", "sseclient"),
        "import requests, sseclient",
    ),
    Client(
        "raw_floor",
        "floor: http.client read1 + json",
        raw_floor,
        (),
        "import http.client, json",
    ),
    Client(
        "core_floor",
        "floor: langchain-core in-memory _stream",
        core_floor,
        ("langchain_core",),
        "import langchain_core.language_models.llms",
        network=False,
    ),
)
BY_NAME = {client.name: client for client in CLIENTS}
