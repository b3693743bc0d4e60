"""`TogetherLLM.stream`/`astream` behave exactly like langchain-core's, callback for callback.

The override only changes how the running total is added up (linear instead of quadratic
time); these tests run the same scenarios through `BaseLLM.stream`/`astream` and through
ours and compare everything the callbacks and a tracer saw.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.llms import BaseLLM
from langchain_core.prompts import PromptTemplate
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from langchain_together_stream import TogetherError, TogetherLLM
from langchain_together_stream._runs import (
    _CHECKED,
    FAST_STREAM,
    astream_run,
    fingerprint,
    installed_fingerprint,
    stream_run,
)
from tests.conftest import make_llm
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream

TOKENS = ["Alan", " Turing", " was", " a", " mathematician", "."]
CONFIG = {"tags": ["t1"], "metadata": {"user": "u1"}, "run_name": "my-run"}


class Everything(BaseCallbackHandler):
    """Records every LLM callback with its arguments, run ids dropped."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def _note(self, name: str, *args: Any, **kwargs: Any) -> None:
        for key in ("run_id", "parent_run_id"):
            kwargs.pop(key, None)
        self.calls.append((name, args, kwargs))

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self._note("start", *args, **kwargs)

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        self._note("token", *args, **kwargs)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._note("end", *args, **kwargs)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._note("error", type(error).__name__, str(error), **kwargs)


def traced(runs: RunCollectorCallbackHandler) -> list[dict[str, Any]]:
    keep = ("name", "run_type", "inputs", "outputs", "error", "tags", "extra", "serialized")
    out = []
    for run in runs.traced_runs:
        record = {key: getattr(run, key) for key in keep}
        record["events"] = [event["name"] for event in run.events]
        record["error"] = (run.error or "").split("\n")[0]
        out.append(record)
    return out


def run_sync(stream: Any, llm: TogetherLLM, stop_after: int | None = None) -> tuple[Any, ...]:
    handler, runs = Everything(), RunCollectorCallbackHandler()
    config = {**CONFIG, "callbacks": [handler, runs]}
    tokens, error = [], None
    iterator = stream(llm, "Tell me", config, stop=["\n\n"], temperature=0.3)
    try:
        for token in iterator:
            tokens.append(token)
            if stop_after is not None and len(tokens) == stop_after:
                iterator.close()
                break
    except TogetherError as exc:
        error = (type(exc).__name__, exc.partial_text)
    return tokens, error, handler.calls, traced(runs)


def run_async(stream: Any, llm: TogetherLLM, stop_after: int | None = None) -> tuple[Any, ...]:
    handler, runs = Everything(), RunCollectorCallbackHandler()
    config = {**CONFIG, "callbacks": [handler, runs]}

    async def main() -> tuple[Any, ...]:
        tokens, error = [], None
        iterator = stream(llm, "Tell me", config, stop=["\n\n"], temperature=0.3)
        try:
            async for token in iterator:
                tokens.append(token)
                if stop_after is not None and len(tokens) == stop_after:
                    await iterator.aclose()
                    break
        except TogetherError as exc:
            error = (type(exc).__name__, exc.partial_text)
        return tokens, error

    tokens, error = asyncio.run(main())
    return tokens, error, handler.calls, traced(runs)


def core_stream(llm: Any, *args: Any, **kwargs: Any) -> Any:
    return BaseLLM.stream(llm, *args, **kwargs)


def ours_stream(llm: Any, *args: Any, **kwargs: Any) -> Any:
    return llm.stream(*args, **kwargs)


def core_astream(llm: Any, *args: Any, **kwargs: Any) -> Any:
    return BaseLLM.astream(llm, *args, **kwargs)


def ours_astream(llm: Any, *args: Any, **kwargs: Any) -> Any:
    return llm.astream(*args, **kwargs)


SCENARIOS = {
    "complete": (lambda: Reply(body=token_stream(TOKENS)), None),
    "error mid-stream": (
        lambda: Reply(
            body=[
                *sse_body(completion_chunk("Hel"), completion_chunk("lo"), done=False),
                b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n',
            ]
        ),
        None,
    ),
    "truncated": (lambda: Reply(body=sse_body(completion_chunk("Ha"), done=False)), None),
    "closed early": (lambda: Reply(body=token_stream(TOKENS)), 2),
}


def test_the_fast_path_is_in_use_with_this_langchain_core() -> None:
    # Fails on a langchain-core whose run logic differs from the copy: without the fast path
    # stream() is correct but quadratic, and the comparisons below would compare
    # langchain-core with itself.
    version = importlib.metadata.version("langchain-core")
    assert FAST_STREAM, (
        f"langchain-core {version} has code fingerprint {installed_fingerprint()}, not one of "
        f"{sorted(_CHECKED)}: compare its BaseLLM.stream/astream (and the internals named in "
        "_runs._USED) with _runs.py, update the copy, and record the new fingerprint"
    )
    llm = TogetherLLM(model="m", api_key="k")
    assert llm.stream("x").gi_code is stream_run.__code__  # type: ignore[attr-defined]
    assert llm.astream("x").ag_code is astream_run.__code__  # type: ignore[attr-defined]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_stream_matches_langchain_core(serve: Any, scenario: str) -> None:
    reply, stop_after = SCENARIOS[scenario]
    server = serve(reply())
    llm = make_llm(server, max_retries=0)
    expected = run_sync(core_stream, llm, stop_after)
    got = run_sync(ours_stream, llm, stop_after)
    assert got == expected
    assert got[2]  # callbacks did run


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_astream_matches_langchain_core(serve: Any, scenario: str) -> None:
    reply, stop_after = SCENARIOS[scenario]
    server = serve(reply())
    llm = make_llm(server, max_retries=0)
    expected = run_async(core_astream, llm, stop_after)
    got = run_async(ours_astream, llm, stop_after)
    assert got == expected
    assert got[2]


def test_astream_events_match_langchain_core(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    chain = PromptTemplate.from_template("About {topic}") | make_llm(server)

    def collect() -> list[tuple[str, str, Any]]:
        async def main() -> list[tuple[str, str, Any]]:
            return [
                (event["event"], event["name"], event["data"])
                async for event in chain.astream_events({"topic": "x"}, version="v2")
            ]

        return asyncio.run(main())

    ours = collect()
    monkeypatch.setattr(TogetherLLM, "stream", BaseLLM.stream)
    monkeypatch.setattr(TogetherLLM, "astream", BaseLLM.astream)
    assert collect() == ours
    assert [data["chunk"].text for kind, _, data in ours if kind == "on_llm_stream"][:6] == TOKENS


STREAM_SOURCE = """
def stream(self, x):
    \"\"\"Doc.\"\"\"
    total = None  # the running total
    for chunk in self._stream(x):
        total = chunk if total is None else total + chunk
    return total
"""


def test_fingerprint_ignores_formatting_comments_and_docstrings() -> None:
    reformatted = (
        STREAM_SOURCE.replace('    """Doc."""\n', "")
        .replace("  # the running total", "")
        .replace("total = chunk if", "total = (\n        chunk if")
        .replace("+ chunk\n", "+ chunk\n    )\n")
    )
    indented = "\n".join("    " + line for line in STREAM_SOURCE.splitlines())
    base = fingerprint({"BaseLLM.stream": STREAM_SOURCE})
    assert fingerprint({"BaseLLM.stream": reformatted}) == base
    assert fingerprint({"BaseLLM.stream": indented}) == base


def test_fingerprint_sees_changed_and_missing_code() -> None:
    base = fingerprint({"BaseLLM.stream": STREAM_SOURCE, "helper": "def helper(): pass"})
    changed = STREAM_SOURCE.replace("total + chunk", "chunk + total")
    assert fingerprint({"BaseLLM.stream": changed, "helper": "def helper(): pass"}) != base
    assert fingerprint({"BaseLLM.stream": STREAM_SOURCE, "helper": None}) != base
    assert fingerprint({"BaseLLM.astream": STREAM_SOURCE, "helper": "def helper(): pass"}) != base
