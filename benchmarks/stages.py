"""Where our per-token CPU goes: the same stream cut off after each layer of the pipeline.

Each stage runs everything before it, so the difference between consecutive stages is the
cost of one layer. It reaches into private internals on purpose; a stage whose internals have
changed is reported as unavailable instead of failing the run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.clients import _handler, _ours_llm

Stage = tuple[str, str, Callable[[], None]]


def _stages(llm: Any) -> list[Stage]:
    from langchain_together_stream._chunks import GenerationAssembler  # noqa: PLC0415
    from langchain_together_stream._http import Attempts  # noqa: PLC0415
    from langchain_together_stream._wire import DONE, parse_chunk  # noqa: PLC0415

    request = llm._stream_request("Benchmark", None, {})
    transport = llm._transport

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
                parse_chunk(event.event, event.data)

    def assembled() -> None:
        assembler = GenerationAssembler(model="m", with_logprobs=False)
        for event in transport.stream_events(request):
            if event.data != DONE:
                assembler.add(parse_chunk(event.event, event.data))

    def private_stream() -> None:
        for _ in llm._stream("Benchmark"):
            pass

    def public_stream() -> None:
        for _ in llm.stream("Benchmark"):
            pass

    def with_callback() -> None:
        for _ in llm.stream("Benchmark", config={"callbacks": [_handler(lambda token: None)]}):
            pass

    return [
        ("HTTP reads", "_transport: urllib3 read1 per HTTP chunk", reads),
        ("SSE events", "_sse: framing + sseclient-py", events),
        ("parsed chunks", "_wire: parse_chunk (msgspec decode)", parsed),
        ("GenerationChunks", "_chunks: GenerationAssembler", assembled),
        ("TogetherLLM._stream", "llms: the _stream loop", private_stream),
        ("BaseLLM.stream", "langchain-core: run manager, `generation += chunk`", public_stream),
        ("+ one callback handler", "langchain-core: on_llm_new_token dispatch", with_callback),
    ]


def breakdown(base_url: str, tokens: int, rounds: int) -> list[tuple[str, str, float | None]]:
    """CPU µs per token after each stage (median of `rounds` after a warm-up)."""
    llm = _ours_llm(base_url)
    try:
        stages = _stages(llm)
    except (AttributeError, ImportError, TypeError):
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


def decoders(base_url: str, tokens: int, rounds: int) -> tuple[float, float] | None:
    """CPU µs per token to decode each chunk's JSON: msgspec (ours), and pydantic alone.

    What the msgspec dependency pays, measured in every run: the same events (one stream's,
    read once), decoded by each, interleaved (median of `rounds`).
    """
    try:
        from langchain_together_stream._wire import DONE  # noqa: PLC0415
        from langchain_together_stream._wire.completions import _CHUNK  # noqa: PLC0415
    except ImportError:
        return None
    llm = _ours_llm(base_url)
    request = llm._stream_request("Benchmark", None, {})
    datas = [e.data for e in llm._transport.stream_events(request) if e.data != DONE]
    samples: dict[str, list[float]] = {"msgspec": [], "pydantic": []}
    for _ in range(rounds + 1):
        for name, decode in (
            ("msgspec", _CHUNK.fast.decode),
            ("pydantic", _CHUNK.checked.validate_json),
        ):
            start = time.process_time()
            for data in datas:
                decode(data)
            samples[name].append((time.process_time() - start) * 1e6 / max(1, len(datas)))
    return statistics.median(samples["msgspec"][1:]), statistics.median(samples["pydantic"][1:])
