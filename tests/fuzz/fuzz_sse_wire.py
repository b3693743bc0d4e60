"""Coverage-guided fuzzing of the SSE + wire layer: bytes -> events -> chunks -> LangChain chunks.

Invariant: whatever bytes arrive, in whatever reads, only `TogetherError`s escape.

    python tests/fuzz/fuzz_sse_wire.py -max_total_time=60 -artifact_prefix=tests/fuzz/regressions/ CORPUS_DIR

With atheris (libFuzzer) installed this is a coverage-guided run over `_sse`, `_wire`,
`_chunks` and sseclient-py, instrumented; a crashing input is written under the
`-artifact_prefix`. Without atheris it falls back to hypothesis for the same time budget and
saves a crashing input the same way. `tests/fuzz/test_fuzz.py` runs it and replays
`tests/fuzz/regressions/`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

_MAX_EVENT_BYTES = 1024


def one_input(data: bytes) -> None:
    """Feed `data` through the layer; the first byte picks the read size, the rest is the body.

    Raises:
        Exception: Anything that is not a `TogetherError` (a bug).
    """
    from langchain_together_stream._chunks import GenerationAssembler, aggregate
    from langchain_together_stream._sse import iter_events
    from langchain_together_stream._wire import DONE, parse_chunk
    from langchain_together_stream.errors import TogetherError

    if not data:
        return
    step, body = data[0] + 1, data[1:]
    reads = (body[start : start + step] for start in range(0, len(body), step))
    assembler = GenerationAssembler(model="m", with_logprobs=bool(step & 1))
    chunks = []
    try:
        saw_done = False
        for event in iter_events(reads, max_event_bytes=_MAX_EVENT_BYTES):
            if event.data == DONE:
                saw_done = True
                break
            chunk = assembler.add(parse_chunk(event.event, event.data))
            if chunk is not None:
                chunks.append(chunk)
        chunks.append(assembler.finish(saw_done=saw_done))
        aggregate(chunks)
    except TogetherError:
        return


def _flag(argv: list[str], name: str, default: str) -> str:
    prefix = f"-{name}="
    return next((arg[len(prefix) :] for arg in argv if arg.startswith(prefix)), default)


def _save(prefix: str, data: bytes) -> Path:
    path = Path(f"{prefix}crash-{hashlib.sha1(data).hexdigest()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _hypothesis_run(argv: list[str]) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    budget = float(_flag(argv, "max_total_time", "3"))  # other libFuzzer flags are ignored
    prefix = _flag(argv, "artifact_prefix", "./")
    deadline = time.monotonic() + budget
    runs = 0

    @settings(
        max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.binary(max_size=4096))
    def check(data: bytes) -> None:
        try:
            one_input(data)
        except Exception:
            print(f"crash input saved to {_save(prefix, data)}", file=sys.stderr)
            raise

    while time.monotonic() < deadline and runs < 10_000:  # bounded either way
        check()
        runs += 1
    print(f"hypothesis fallback: {runs} batches, no crash", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    """Fuzz with atheris when it is installed, else with hypothesis."""
    try:
        import atheris
    except ImportError:
        return _hypothesis_run(argv)
    with atheris.instrument_imports(include=["langchain_together_stream", "sseclient"]):
        import langchain_together_stream._chunks
        import langchain_together_stream._sse
        import langchain_together_stream._wire  # noqa: F401
    fuzz: Any = atheris
    fuzz.Setup(argv, one_input)
    fuzz.Fuzz()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main(sys.argv))
